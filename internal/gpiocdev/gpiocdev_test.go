package gpiocdev

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"periph.io/x/conn/v3/gpio"
)

// The sizes and offsets of <linux/gpio.h> (uAPI v2), the same on every
// architecture: a wrong one would make the kernel read garbage, or refuse
// the request with EINVAL, only on some of them (armhf is 32-bit).
func TestLayout(t *testing.T) {
	var r lineRequest
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(gpio_v2_line_request)", unsafe.Sizeof(r), 592},
		{"offsetof(consumer)", unsafe.Offsetof(r.consumer), 256},
		{"offsetof(config)", unsafe.Offsetof(r.config), 288},
		{"offsetof(num_lines)", unsafe.Offsetof(r.numLines), 560},
		{"offsetof(event_buffer_size)", unsafe.Offsetof(r.eventBufferSize), 564},
		{"offsetof(fd)", unsafe.Offsetof(r.fd), 588},
		{"sizeof(gpio_v2_line_config)", unsafe.Sizeof(r.config), 272},
		{"offsetof(config.attrs)", unsafe.Offsetof(r.config.attrs), 32},
		{"sizeof(gpio_v2_line_config_attribute)", unsafe.Sizeof(r.config.attrs[0]), 24},
		{"offsetof(attr.value)", unsafe.Offsetof(r.config.attrs[0].attr.value), 8},
		{"offsetof(attribute.mask)", unsafe.Offsetof(r.config.attrs[0].mask), 16},
		{"sizeof(gpio_v2_line_values)", unsafe.Sizeof(lineValues{}), 16},
		{"GPIO_V2_GET_LINE_IOCTL", getLineIoctl, 0xC250B407},
		{"GPIO_V2_LINE_SET_VALUES_IOCTL", setValuesIoctl, 0xC010B40F},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func TestRequestOutputErrors(t *testing.T) {
	t.Run("no chip", func(t *testing.T) {
		_, err := RequestOutput("/nonexistent/gpiochip0", 23, "GPIO23", "test", gpio.Low)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "GPIO23") {
			t.Errorf("err = %v, want a not-exist error naming GPIO23", err)
		}
	})
	t.Run("negative offset", func(t *testing.T) {
		if _, err := RequestOutput("/dev/null", -1, "GPIO23", "test", gpio.Low); err == nil {
			t.Error("err = nil, want an error")
		}
	})
	t.Run("not a gpio chip", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the GPIO character device is Linux's")
		}
		// ENOTTY from the kernel; user-mode qemu answers ENOSYS.
		_, err := RequestOutput("/dev/null", 23, "GPIO23", "test", gpio.High)
		var errno syscall.Errno
		if !errors.As(err, &errno) || !strings.Contains(err.Error(), "/dev/null line 23") {
			t.Errorf("err = %v, want the ioctl's errno naming /dev/null line 23", err)
		}
	})
}

func TestClosedOutput(t *testing.T) {
	o := &Output{name: "GPIO5", number: 5, fd: -1}
	if err := o.Out(gpio.High); !errors.Is(err, errClosed) {
		t.Errorf("Out on a released line: %v, want errClosed", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := o.Function(); got != "" {
		t.Errorf("Function() = %q, want \"\"", got)
	}
	if got := o.String(); got != "GPIO5" {
		t.Errorf("String() = %q, want GPIO5", got)
	}
}

func TestConsumer(t *testing.T) {
	c := Consumer()
	if len(c) > maxNameSize-1 || !strings.Contains(c, "@") {
		t.Errorf("Consumer() = %q, want name@pid of at most %d bytes", c, maxNameSize-1)
	}
}
