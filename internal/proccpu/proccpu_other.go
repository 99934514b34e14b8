//go:build !unix

package proccpu

// Seconds is not measured here: it is always 0.
func Seconds() float64 { return 0 }
