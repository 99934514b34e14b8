//go:build unix

package proccpu

import (
	"syscall"
	"time"
)

// Seconds is this process's user and system CPU time in seconds (0 when
// the kernel does not say).
func Seconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
