package otp

import (
	"context"
	"time"
)

// Callback schedule (README.md, "Delivery receipts and callbacks").
const (
	// CallbackRetryBase is the delay before the first retry (with jitter,
	// between half of it and all of it); each later delay doubles.
	CallbackRetryBase = 5 * time.Second
	// CallbackMaxInterval caps the delay between two tries.
	CallbackMaxInterval = 10 * time.Minute
	// CallbackMaxAge is how long after its receipt a callback is still
	// tried; then it is dropped.
	CallbackMaxAge = 24 * time.Hour
)

// CallbackKind says what a queued callback reports, and so which URL of
// the client it goes to.
type CallbackKind string

// Kinds of callback.
const (
	// CallbackReceipt is a delivery-state change of a message, POSTed to
	// the client's callback_url. It is the zero value, so that records
	// queued before kinds existed read as receipts.
	CallbackReceipt CallbackKind = ""
	// CallbackMO is an MO message to the client's sender, POSTed to its
	// mo_callback_url.
	CallbackMO CallbackKind = "mo"
)

// Callback is one delivery-state change of a message (or, with Kind
// CallbackMO, one MO message), queued for the client. Body says what the
// client gets; Attempts, FirstAt and Due are the queue's bookkeeping.
type Callback struct {
	ID          string    `json:"id"` // unique within the queue
	RequestID   string    `json:"r"`
	ClientID    string    `json:"c"`
	PhoneNumber string    `json:"n"` // masked, as Message.Display
	Carrier     string    `json:"cr"`
	State       State     `json:"s"`
	Error       string    `json:"e,omitempty"`
	DoneAt      time.Time `json:"t"`
	Attempts    int       `json:"a,omitempty"` // tries that failed so far
	FirstAt     time.Time `json:"f"`           // when it was queued; CallbackMaxAge counts from here
	Due         time.Time `json:"d"`           // when it is to be tried next
	// Kind is CallbackReceipt (zero) or CallbackMO. MO callbacks use
	// From, To and Text, with DoneAt the time the MO was received.
	Kind CallbackKind `json:"k,omitempty"`
	From string       `json:"fr,omitempty"` // full E.164 with '+' when the carrier gave an international number
	To   string       `json:"to,omitempty"` // the sender the MO was sent to
	Text string       `json:"x,omitempty"`
	// History lists every carrier's attempt, the current one last, when
	// the message was retried through another carrier (see Message.Earlier).
	History []AttemptBody `json:"h,omitempty"`
}

// AttemptBody is one attempt in a callback's or status answer's
// "attempts" list.
type AttemptBody struct {
	Carrier     string `json:"carrier"`
	State       string `json:"state"`
	Error       string `json:"error"`
	SubmittedAt string `json:"submittedAt"`
	DoneAt      string `json:"doneAt,omitempty"`
}

// AttemptBodies returns m's attempts as the API shows them (RFC 3339
// times, UTC), or nil when m was never retried.
func AttemptBodies(m Message) []AttemptBody {
	as := m.Attempts()
	if as == nil {
		return nil
	}
	out := make([]AttemptBody, len(as))
	for i, a := range as {
		out[i] = AttemptBody{Carrier: a.Carrier, State: string(a.State), Error: a.Error,
			SubmittedAt: a.SubmittedAt.UTC().Format(time.RFC3339)}
		if !a.DoneAt.IsZero() {
			out[i].DoneAt = a.DoneAt.UTC().Format(time.RFC3339)
		}
	}
	return out
}

// NewCallback returns the callback telling m's client of m's current
// state, queued at now with id. DoneAt is the receipts' done time, or now
// when the carrier gave none.
func NewCallback(m Message, id string, now time.Time) Callback {
	state, code, done := m.Summary()
	if done.IsZero() {
		done = now
	}
	return Callback{ID: id, RequestID: m.RequestID, ClientID: m.ClientID, PhoneNumber: m.Display,
		Carrier: m.Carrier, State: state, Error: code, DoneAt: done, FirstAt: now, Due: now, History: AttemptBodies(m)}
}

// CallbackDelay is the wait before the next try of a callback whose
// attempts-th try just failed (attempts >= 1): base doubled attempts-1
// times, capped at maxInterval, then "equal jitter": half of it plus jitter
// (in [0, 1), clamped) times the other half. So the first retry comes
// between base/2 and base, and no wait exceeds maxInterval.
func CallbackDelay(attempts int, base, maxInterval time.Duration, jitter float64) time.Duration {
	if base <= 0 {
		base = CallbackRetryBase
	}
	if maxInterval <= 0 {
		maxInterval = CallbackMaxInterval
	}
	d := min(base, maxInterval)
	for i := 1; i < attempts && d < maxInterval; i++ {
		d *= 2
	}
	d = min(d, maxInterval)
	jitter = max(0, min(jitter, 1))
	return d/2 + time.Duration(jitter*float64(d-d/2))
}

// CallbackQueue is the durable queue of callbacks that a dispatcher
// drains. Implementations are safe for concurrent use; a nil error means
// the change is on disk.
type CallbackQueue interface {
	// DueCallbacks returns callbacks due at now: for each client, at most
	// perClient of them, the earliest due first.
	DueCallbacks(ctx context.Context, now time.Time, perClient int) ([]Callback, error)
	// CallbackDone removes callbacks from the queue (delivered or dropped).
	// Callbacks no longer queued are ignored.
	CallbackDone(ctx context.Context, cbs ...Callback) error
	// RescheduleCallback stores cb (its Attempts as given) due at next, in
	// place of the queued callback with cb's ID and cb.Due.
	RescheduleCallback(ctx context.Context, cb Callback, next time.Time) error
}
