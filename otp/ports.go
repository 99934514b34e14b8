package otp

import "context"

// Store persists OTP records and messages. Implementations must be safe for
// concurrent use and durable: a nil error means the write is on disk. They
// keep every field as given, times to the nanosecond (a send is found again
// by its time). The contract every implementation must pass is the suite
// in store/storetest.
type Store interface {
	// GetOTP returns the record stored under key, or ErrNotFound when there is
	// none or it has expired.
	GetOTP(ctx context.Context, key string) (Record, error)
	// SaveSend, in one transaction, loads the record under key, lets fn
	// update it (found reports whether a live record exists) and writes it,
	// and writes msg, applying any receipt that arrived for msg's parts
	// before this call. It returns msg as stored. fn may run more than once
	// (a store retries the transaction on a conflict, or runs it again when
	// it rebuilds a group commit).
	SaveSend(ctx context.Context, key string, msg Message, fn func(rec *Record, found bool)) (Message, error)
	// UpdateOTP loads the record under key inside one transaction and calls
	// fn with it (found reports whether a live record exists). What fn
	// returns decides what is written: Keep writes nothing, Put writes *rec,
	// Delete removes the key. fn may run more than once (as for SaveSend)
	// and must not have side effects. UpdateOTP
	// returns fn's error once the change is committed.
	UpdateOTP(ctx context.Context, key string, fn func(rec *Record, found bool) (Change, error)) error
}

// ReceiptStore records delivery receipts against messages. A store that
// is also a CallbackQueue queues, in the same write as each change of a
// message's delivery state (Message.Summary) to a state other than
// ACCEPTED, whether ApplyReceipt, SaveSend, RecordLateAck or RecordRetry
// makes it, NewCallback of the message as stored (unless it was told that
// the message's client takes no callbacks): a receipt acknowledged to the
// carrier always has its callback queued.
type ReceiptStore interface {
	// ApplyReceipt records r against the message part whose id matches
	// r.MessageID (see IDForms) and returns the updated message. When no
	// message matches yet it keeps the receipt so that a later SaveSend
	// applies it, and reports matched false. A receipt marked Exact
	// matches only under its exact form, and is kept only for the message
	// of that exact id. A receipt that repeats one
	// already applied, or a non-final state after a final one, changes
	// nothing (changed false).
	ApplyReceipt(ctx context.Context, r Receipt) (msg Message, matched, changed bool, err error)
	// Message returns the message of requestID, or ErrRequestNotFound.
	// Its Verified is reliable only here: the messages other methods
	// return may leave it false (a store may keep it apart, see
	// MarkVerified).
	Message(ctx context.Context, requestID string) (Message, error)
	// MarkVerified makes Message report Verified for requestID. A store
	// may keep the mark apart from the message and write it without
	// reading the message: for an unknown requestID it then returns nil
	// (Message still answers ErrRequestNotFound) instead of
	// ErrRequestNotFound.
	MarkVerified(ctx context.Context, requestID string) error
	// RecordLateAck gives a message whose send ended without an answer
	// (ErrOutcomeUnknown) the carrier's message id that came later, so
	// that its receipt matches, and applies a receipt that came before.
	// It returns the message as stored and whether this call changed its
	// delivery state (Message.Summary), or ErrRequestNotFound while the
	// message is not stored yet.
	RecordLateAck(ctx context.Context, a Ack) (msg Message, changed bool, err error)
	// RecordRetry makes a the current attempt of the message of requestID,
	// keeping the one it replaces in Earlier, indexes a's parts and applies
	// receipts that came before. It returns the message as stored, or
	// ErrRequestNotFound.
	RecordRetry(ctx context.Context, requestID string, a Attempt) (Message, error)
}

// Change says what UpdateOTP writes back.
type Change int

// The changes UpdateOTP can make.
const (
	Keep Change = iota
	Put
	Delete
)

// Sender hands an SMS to a carrier. It returns once a carrier acknowledged
// every part (submit_sm_resp OK), or ErrUpstreamDown when no carrier of the
// route could take it before ctx's deadline, or ErrInvalidNumber when a
// carrier rejected the destination permanently.
type Sender interface {
	Send(ctx context.Context, sms SMS) (Sent, error)
}

// Limiter is a keyed token bucket.
type Limiter interface {
	// Allow takes one token from the bucket of key, refilled at perSecond up
	// to burst, and reports whether there was one. A perSecond that is not
	// above zero means no limit; a burst below one counts as one.
	Allow(key string, perSecond float64, burst int) bool
}
