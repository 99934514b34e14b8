// Package otp owns the domain of otpgate: sending and verifying one-time
// passwords, the rules that govern them (templates, attempts, resend limits,
// block lists, allow-lists), the errors those rules return, and the small
// interfaces that adapters implement (Store, ReceiptStore, CallbackQueue,
// MOQueue, Sender, Limiter). It imports no adapter: see
// docs/architecture.md for who implements what.
package otp
