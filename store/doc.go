// Package store keeps otpgate's durable state in an embedded badger/v4
// database: OTP records, messages with their carrier message-id index,
// delivery receipts that arrived before the message they belong to, and
// the queue of callbacks to clients. Every write goes through one writer
// goroutine that commits them in groups (batch.go). DB implements
// otp.Store, otp.ReceiptStore, otp.CallbackQueue and otp.MOQueue; see
// docs/architecture.md.
package store
