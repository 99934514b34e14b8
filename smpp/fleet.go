package smpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/otpgate/otpgate/internal/ctxsleep"
	"github.com/otpgate/otpgate/otp"
)

// Fleet shares a carrier's binds between the nodes of a fleet. Carriers
// cap the binds of an account and refuse the next one, so a carrier's
// Binds are the fleet's total: each slot is bound by the one node that
// holds its lease, and a node that holds none of a carrier's slots hands
// its submits to a node that does.
type Fleet interface {
	// Acquire waits until this node holds the lease of the carrier's bind
	// slot (named like "trx-0"), or ctx ends (then it returns ctx's
	// error). The returned context ends when the lease is lost: not
	// renewed in time, or taken over; the slot's session is then unbound.
	// release gives the lease back; it must be called once.
	Acquire(ctx context.Context, carrier, slot string) (held context.Context, release func(), err error)
	// Remote reports whether another node holds a bind slot of carrier
	// and can take forwarded submits.
	Remote(carrier string) bool
	// Forward submits sms through carrier on another node that holds one
	// of its binds. Its errors read like Submit's (see ForwardCode).
	Forward(ctx context.Context, carrier string, sms otp.SMS) ([]string, error)
}

type forwardedKey struct{}

// WithForwarded marks ctx as a submit forwarded by another node: the
// carrier submits it on its own binds or fails, and never forwards it
// again (no loops between nodes).
func WithForwarded(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedKey{}, true)
}

func forwarded(ctx context.Context) bool {
	on, _ := ctx.Value(forwardedKey{}).(bool)
	return on
}

// DuplicateAllowed reports whether ctx carries WithDuplicateAllowed (a
// forwarder passes it on to the node that submits).
func DuplicateAllowed(ctx context.Context) bool { return duplicateAllowed(ctx) }

// FailoverAllowed reports whether a submit under ctx may give up on a
// stalled carrier for the route's next one (a forwarder passes it on to
// the node that submits).
func FailoverAllowed(ctx context.Context) bool { return canFailover(ctx) }

// WithFailoverAllowed is the context a node submits a forwarded SMS under
// when its origin's route had another carrier to try.
func WithFailoverAllowed(ctx context.Context, on bool) context.Context { return withFailover(ctx, on) }

// Forward codes: what a failed submit's error means to the router, as
// one node tells another (ForwardCode, ForwardError).
const (
	FwdNotBound      = "not_bound"      // nothing written: fail over
	FwdThrottled     = "throttled"      // nothing accepted: fail over, back off
	FwdStatus        = "status"         // refused with a command status
	FwdPartial       = "partial"        // some parts accepted: do not fail over
	FwdLostWritten   = "lost_written"   // session died after the submit was written
	FwdLostUnwritten = "lost_unwritten" // session died before it was written
	FwdStalled       = "stalled"        // written, unanswered within stall_timeout
	FwdUnanswered    = "unanswered"     // written, unanswered before the deadline
	FwdDeadline      = "deadline"       // the send's time ran out
	FwdOther         = "other"          // anything else: no failover
)

// ForwardCode reads a Submit error as a forward code and, for FwdStatus and
// a throttling status, the command status. What says the SMS may be on
// its way (written, unanswered, partly accepted) is read before the
// context's end that often comes with it.
func ForwardCode(err error) (code string, status uint32) {
	var (
		se   *StatusError
		lost *SessionLostError
	)
	switch {
	case errors.Is(err, ErrPartial):
		return FwdPartial, 0
	case errors.Is(err, ErrStalled):
		return FwdStalled, 0
	case errors.As(err, &lost):
		if lost.Written {
			return FwdLostWritten, 0
		}
		return FwdLostUnwritten, 0
	case errors.Is(err, ErrUnanswered):
		return FwdUnanswered, 0
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return FwdDeadline, 0
	case errors.As(err, &se):
		if errors.Is(err, ErrThrottled) {
			return FwdThrottled, se.Status
		}
		return FwdStatus, se.Status
	case errors.Is(err, ErrThrottled):
		return FwdThrottled, 0
	case errors.Is(err, ErrNotBound):
		return FwdNotBound, 0
	}
	return FwdOther, 0
}

// ForwardError is the error a forwarded submit's code stands for, read by
// the router as it reads the same error from a local Submit.
func ForwardError(code string, status uint32) error {
	switch code {
	case FwdNotBound:
		return ErrNotBound
	case FwdThrottled:
		if status != 0 {
			return &StatusError{Status: status}
		}
		return ErrThrottled
	case FwdStatus:
		return &StatusError{Status: status}
	case FwdPartial:
		return fmt.Errorf("%w: on the remote node", ErrPartial)
	case FwdLostWritten, FwdLostUnwritten:
		return &SessionLostError{Written: code == FwdLostWritten, Cause: errors.New("on the remote node")}
	case FwdStalled:
		return fmt.Errorf("%w: %w: on the remote node", ErrStalled, ErrUnanswered)
	case FwdUnanswered:
		return fmt.Errorf("%w: on the remote node", ErrUnanswered)
	case FwdDeadline:
		return context.DeadlineExceeded
	}
	return fmt.Errorf("smpp: forwarded submit failed (%s)", code)
}

// keepLeased keeps a slot bound while this node holds its fleet lease:
// it waits for the lease, binds, and unbinds when the lease is lost, then
// waits for it again, until ctx ends.
func (c *Carrier) keepLeased(ctx context.Context, sl *slot) {
	name := sl.name()
	log := c.log.With(keyBind, sl.kind.String(), keySlot, sl.index)
	for {
		// No new lease once Run's context ended: a stopping node leaves
		// free slots to the others. A lease taken before lives through the
		// drain like any bind.
		actx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(c.runCtx, cancel)
		held, release, err := c.cfg.Fleet.Acquire(actx, c.cfg.Name, name)
		stop()
		if err != nil {
			cancel()
			return // ctx or Run's context ended
		}
		log.Info("bind lease acquired")
		c.leased(sl, 1)
		c.keepBound(held, sl)
		c.leased(sl, -1)
		lost := held.Err() != nil // before release, which ends held
		release()
		cancel()
		if ctx.Err() != nil || c.runCtx.Err() != nil {
			return
		}
		if f, ok := c.obs.(BindForgetter); ok { // the slot is another node's (or nobody's) now
			f.BindGone(c.cfg.Name, name)
		}
		if lost {
			log.Warn("bind lease lost: unbound; waiting for the lease again")
			continue
		}
		// keepBound gave up (no bind after fleetGiveUpAfter tries): the
		// other nodes get the slot first.
		if !ctxsleep.Sleep(ctx, fleetGiveUpPause) {
			return
		}
	}
}

// A node that cannot bind a slot whose lease it holds gives the lease
// back after fleetGiveUpAfter failed binds in a row (its own way to the
// SMSC may be what is broken), and waits fleetGiveUpPause before it asks
// for a lease again (a variable for tests).
const fleetGiveUpAfter = 3

var fleetGiveUpPause = 30 * time.Second

// leased counts a slot's lease taken (+1) or given back (-1), and sets
// this node's share of the carrier's TPS to the share of its transmitting
// binds it holds.
func (c *Carrier) leased(sl *slot, delta int32) {
	if !sl.kind.canTransmit() {
		return
	}
	c.shareMu.Lock() // the count and the share it sets, in one step
	defer c.shareMu.Unlock()
	n := c.heldTx.Add(delta)
	total := 0
	for _, s := range c.slots {
		if s.kind.canTransmit() {
			total++
		}
	}
	if n > 0 && total > 0 {
		c.pace.setShare(float64(n) / float64(total))
	}
}

// Leased returns how many of the carrier's transmitting bind slots this
// node holds the fleet lease of (all of them without a fleet).
func (c *Carrier) Leased() int {
	if c.cfg.Fleet == nil {
		n := 0
		for _, s := range c.slots {
			if s.kind.canTransmit() {
				n++
			}
		}
		return n
	}
	return int(c.heldTx.Load())
}

// Usable reports whether a send may go to this carrier now: a session of
// this node can transmit, or (in a fleet) another node holds a bind of it
// and takes forwarded submits. A suspended carrier is not usable.
func (c *Carrier) Usable() bool {
	if c.Bound() > 0 {
		return true
	}
	return c.canForward(context.Background())
}

// canForward reports whether Submit would hand sms to another node.
func (c *Carrier) canForward(ctx context.Context) bool {
	f := c.cfg.Fleet
	return f != nil && !c.susp.isOn() && !forwarded(ctx) && f.Remote(c.cfg.Name)
}

// forward hands sms to another node holding a bind of this carrier.
func (c *Carrier) forward(ctx context.Context, sms otp.SMS) ([]string, error) {
	ids, err := c.cfg.Fleet.Forward(ctx, c.cfg.Name, sms)
	if err != nil {
		return nil, c.errorf("forwarded submit: %w", err)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("submitted through another node", keyRequestID, sms.RequestID, keyTo, sms.MaskedTo,
			keyMessageID, ids)
	}
	return ids, nil
}
