//go:build !linux

package store

import (
	"errors"
	"syscall"
)

// errNoFallocate is the error of allocateFile where allocation is not
// implemented.
var errNoFallocate = errors.New("fallocate not supported")

// freeBytes is not implemented here: the disk-space guard is off.
func freeBytes(string) (int64, error) {
	return 0, errors.New("free space: not implemented on this system")
}

// allocateFile is not implemented here.
func allocateFile(string) error { return errNoFallocate }

// isNoSpace reports whether err is the filesystem's "full".
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
