// Package storetest is the contract every store backend of otpgate must
// pass: the behaviour of the otp ports (Store, ReceiptStore, CallbackQueue,
// MOQueue and Limiter) that the domain relies on, checked through the ports
// alone. A backend's tests call Run (and RunLimiter for its limiter) with a
// function that opens a fresh backend on the suite's clock; what is
// particular to one backend (reopening, group commit, caps) stays in that
// backend's own tests.
package storetest
