package daemon

import "time"

// SetCallbackRetryBase sets the first retry delay of the callbacks of the
// gateways started after it (production: 5 s) and returns a func that
// restores it. Tests that use it must not run in parallel.
func SetCallbackRetryBase(d time.Duration) (restore func()) {
	old := callbackOptions
	callbackOptions.RetryBase = d
	callbackOptions.PollInterval = 50 * time.Millisecond
	return func() { callbackOptions = old }
}

// SetCallbackCircuit sets the circuit threshold and cool-down of the
// callbacks of the gateways started after it (production: 5, 30 s) and
// returns a func that restores them.
func SetCallbackCircuit(threshold int, cooldown time.Duration) (restore func()) {
	old := callbackOptions
	callbackOptions.CircuitThreshold, callbackOptions.CircuitCooldown = threshold, cooldown
	return func() { callbackOptions = old }
}

// SetReadTimeout sets the HTTP read timeout of the gateways started after
// it (production: 15 s) and returns a func that restores it.
func SetReadTimeout(d time.Duration) (restore func()) {
	old := readTimeout
	readTimeout = d
	return func() { readTimeout = old }
}
