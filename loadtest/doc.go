// Package loadtest drives send-otp and then verify-otp against a running
// otpgate over HTTP, with distinct phone numbers at a set concurrency, and
// reports requests per second, latency quantiles and answers by HTTP status
// for each phase. Main is the body of `otpgate bench`: it can also start the
// bundled SMSC simulator as the carrier the gateway dials, and so read each
// SMS to verify with the right code. It speaks HTTP/1.1 with its own small
// client (wire.go) so that, on a box it shares with the gateway, it takes
// as little of the CPU as it can.
package loadtest
