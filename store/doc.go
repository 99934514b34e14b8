// Package store keeps otpgate's durable state in an embedded badger/v4
// database: OTP records, messages with their carrier message-id index, and
// delivery receipts that arrived before the message they belong to. It
// implements otp.Store and otp.ReceiptStore on DB.
package store
