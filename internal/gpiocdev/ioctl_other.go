//go:build !linux

package gpiocdev

import (
	"errors"
	"unsafe"
)

// The GPIO character device is Linux's.
func ioctl(fd, req uintptr, arg unsafe.Pointer) error { return errors.ErrUnsupported }

func closeFD(fd int) error { return errors.ErrUnsupported }
