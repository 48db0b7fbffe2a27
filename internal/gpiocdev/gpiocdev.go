// Package gpiocdev requests a GPIO line from the Linux GPIO character device
// (/dev/gpiochipN, uAPI v2) as an output with its initial level, which
// periph's gpioioctl driver cannot do.
//
// periph host/v3 v3.8.5 makes a line an output in two steps: the first Out
// reconfigures the line as an output with no output value (the kernel then
// drives it low) and only then sets the level asked for. On a relay board
// that switches on a low line (outputs_active_low) that low is an instant
// with every relay energised: the motor could twitch whenever gated starts.
// The kernel takes an initial value with the line request, and switches the
// line to an output already at that level: RequestOutput asks for it that
// way.
package gpiocdev

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// The uAPI v2 of <linux/gpio.h>: the structures have explicit padding, so
// that their layout is the same for 32-bit and 64-bit user space.
const (
	maxNameSize = 32
	numAttrsMax = 10
	linesMax    = 64

	lineFlagOutput        = 1 << 3
	lineAttrIDOutputValue = 2

	ioctlType = 0xB4
	// _IOWR(0xB4, 0x07, struct gpio_v2_line_request)
	getLineIoctl = 3<<30 | uintptr(unsafe.Sizeof(lineRequest{}))<<16 | ioctlType<<8 | 0x07
	// _IOWR(0xB4, 0x0F, struct gpio_v2_line_values)
	setValuesIoctl = 3<<30 | uintptr(unsafe.Sizeof(lineValues{}))<<16 | ioctlType<<8 | 0x0F
)

type lineAttribute struct {
	id      uint32
	padding uint32
	value   uint64 // flags, output values or debounce period, by id
}

type lineConfigAttribute struct {
	attr lineAttribute
	mask uint64
}

type lineConfig struct {
	flags    uint64
	numAttrs uint32
	padding  [5]uint32
	attrs    [numAttrsMax]lineConfigAttribute
}

type lineRequest struct {
	offsets         [linesMax]uint32
	consumer        [maxNameSize]byte
	config          lineConfig
	numLines        uint32
	eventBufferSize uint32
	padding         [5]uint32
	fd              int32
}

type lineValues struct {
	bits uint64
	mask uint64
}

// Output is one GPIO line held as an output. It implements gpio.PinOut; Out
// may be called from any goroutine. The line stays requested, at the last
// level set, until Close or the end of the process.
type Output struct {
	name   string
	number int

	mu sync.Mutex
	fd int // -1 once closed
}

// RequestOutput requests line offset of the chip at path (/dev/gpiochipN)
// as an output whose initial level is initial: the kernel switches the line
// to an output already at that level. name is the line's name, for messages
// and String; consumer is what the kernel shows as the line's user.
//
// A line that another process (or another request of this one) holds is
// refused with an error wrapping syscall.EBUSY (Linux).
func RequestOutput(path string, offset int, name, consumer string, initial gpio.Level) (*Output, error) {
	if offset < 0 {
		return nil, fmt.Errorf("gpio %s: %s line %d: negative offset", name, path, offset)
	}
	chip, err := os.Open(path) // close-on-exec, as every file Go opens
	if err != nil {
		return nil, fmt.Errorf("gpio %s: %w", name, err)
	}
	defer chip.Close() // the line's own descriptor outlives the chip's

	var req lineRequest
	req.offsets[0] = uint32(offset)
	req.numLines = 1
	copy(req.consumer[:maxNameSize-1], consumer)
	req.config.flags = lineFlagOutput
	req.config.numAttrs = 1
	req.config.attrs[0] = lineConfigAttribute{
		attr: lineAttribute{id: lineAttrIDOutputValue, value: bits(initial)},
		mask: 1, // the first (only) line of the request
	}
	if err := ioctl(chip.Fd(), getLineIoctl, unsafe.Pointer(&req)); err != nil {
		return nil, fmt.Errorf("gpio %s: request %s line %d as an output: %w", name, path, offset, err)
	}
	return &Output{name: name, number: offset, fd: int(req.fd)}, nil
}

func bits(l gpio.Level) uint64 {
	if l {
		return 1
	}
	return 0
}

var errClosed = errors.New("line released")

// Out drives the line to l.
func (o *Output) Out(l gpio.Level) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return fmt.Errorf("gpio %s: %w", o.name, errClosed)
	}
	v := lineValues{bits: bits(l), mask: 1}
	if err := ioctl(uintptr(o.fd), setValuesIoctl, unsafe.Pointer(&v)); err != nil {
		return fmt.Errorf("gpio %s: set %s: %w", o.name, l, err)
	}
	return nil
}

// Close releases the line. What the line does then is the chip driver's
// choice: many keep driving the last level.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return nil
	}
	err := closeFD(o.fd)
	o.fd = -1
	return err
}

// String returns the line's name.
func (o *Output) String() string { return o.name }

// Name returns the line's name.
func (o *Output) Name() string { return o.name }

// Number returns the line's offset on its chip.
func (o *Output) Number() int { return o.number }

// Function returns "Out", or "" once released.
//
// Deprecated: as periph's pin.Pin.
func (o *Output) Function() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return ""
	}
	return string(gpio.OUT)
}

// Halt does nothing: an output has nothing running to stop.
func (o *Output) Halt() error { return nil }

// PWM is not supported.
func (o *Output) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("gpio %s: PWM not supported", o.name)
}

// Consumer returns the consumer label gated gives its lines: the program's
// name and process id, as periph's gpioioctl does.
func Consumer() string {
	s := fmt.Sprintf("%s@%d", progName(), os.Getpid())
	if len(s) > maxNameSize-1 {
		s = s[:maxNameSize-1]
	}
	return s
}

func progName() string {
	s := os.Args[0]
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

var _ gpio.PinOut = (*Output)(nil)
