// Package otp owns the domain of otpgate: sending and verifying one-time
// passwords, the rules that govern them (templates, attempts, resend limits,
// block lists, allow-lists), the errors those rules return, and the small
// interfaces (Store, Sender, Limiter) that adapters implement.
package otp
