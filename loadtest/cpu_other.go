//go:build !unix

package loadtest

// ownCPU is not measured here: the load tool's CPU column reads 0.
func ownCPU() float64 { return 0 }
