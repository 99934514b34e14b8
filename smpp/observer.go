package smpp

import (
	"context"
	"errors"
	"time"
)

// Observer is told what carriers do, for metrics. Labels are carrier
// names, bind names and fixed words: never numbers, ids or texts.
type Observer interface {
	// Submit reports one submit_sm: result is ok, throttled, rejected,
	// lost, timeout or error; d is the time to its response (0 if none).
	Submit(carrier, result string, d time.Duration)
	// BindState reports a session bound (up) or not.
	BindState(carrier, bind string, up bool)
	// BindFailure reports one failed bind attempt: reason is
	// invalid_password, invalid_system_id, invalid_system_type (the SMSC
	// refused the credentials), refused (another bind status), timeout,
	// tls or network.
	BindFailure(carrier, reason string)
	// Degraded reports a carrier entering (true) or leaving (false) the
	// degraded state: a submit went unanswered for its submit_ack_timeout.
	Degraded(carrier string, degraded bool)
	// Receipt reports one parsed delivery receipt by its state, or with
	// state "refused" one answered with an error (an over-long id).
	Receipt(carrier, state string)
}

// BindForgetter may be implemented by an Observer: BindGone says a bind
// slot is no longer this node's (its fleet lease went back or to another
// node), so that its last BindState should be forgotten rather than read
// as a bind down here.
type BindForgetter interface {
	BindGone(carrier, bind string)
}

type nopObserver struct{}

func (nopObserver) Submit(string, string, time.Duration) {}
func (nopObserver) BindState(string, string, bool)       {}
func (nopObserver) BindFailure(string, string)           {}
func (nopObserver) Degraded(string, bool)                {}
func (nopObserver) Receipt(string, string)               {}

// submitResult names the outcome of one submit_sm for metrics.
func submitResult(err error) string {
	var se *StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrThrottled):
		return "throttled"
	case errors.As(err, &se):
		return "rejected"
	case errors.Is(err, ErrSessionLost):
		return "lost"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	return "error"
}
