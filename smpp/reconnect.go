package smpp

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults of the reconnect settings of CarrierOptions.
const (
	defaultReconnectDelay = 10 * time.Second
	defaultReconnectMax   = 5 * time.Minute
	defaultStableAfter    = time.Minute
	defaultAuthRetry      = 10 * time.Minute
	// dialRetryMin and dialRetryMax bound the steps after a failed dial
	// (network, TLS, timeout): a refused or unreachable connection costs
	// the SMSC nothing, and a carrier back from an outage should not wait
	// minutes to be used again.
	dialRetryMin = time.Second
	dialRetryMax = 30 * time.Second
)

// errHandshake marks a failed TLS handshake.
var errHandshake = errors.New("tls handshake")

// Bind failure reasons, as given to Observer.BindFailure.
const (
	reasonInvalidPassword   = "invalid_password"    // ESME_RINVPASWD
	reasonInvalidSystemID   = "invalid_system_id"   // ESME_RINVSYSID
	reasonInvalidSystemType = "invalid_system_type" // ESME_RINVSYSTYP
	reasonRefused           = "refused"             // another non-zero bind status, or generic_nack
	reasonTimeout           = "timeout"             // no connection, handshake or bind_resp in time
	reasonTLS               = "tls"                 // TLS handshake failed or the SMSC sent a TLS alert
	reasonNetwork           = "network"             // dial or I/O error
)

func (cfg *CarrierOptions) reconnectDefaults() {
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = defaultReconnectDelay
	}
	if cfg.ReconnectDelayMax <= 0 {
		cfg.ReconnectDelayMax = defaultReconnectMax
	}
	cfg.ReconnectDelayMax = max(cfg.ReconnectDelayMax, cfg.ReconnectDelay)
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = defaultStableAfter
	}
	if cfg.AuthRetryDelay <= 0 {
		cfg.AuthRetryDelay = defaultAuthRetry
	}
}

// newBackoff returns the one back-off of a bind: dial failures, refused
// binds and binds lost young all grow it, and only a stable bind resets it.
func (c *Carrier) newBackoff() backoff {
	return backoff{min: min(dialRetryMin, c.cfg.ReconnectDelay), max: c.cfg.ReconnectDelayMax}
}

// failureWait is the wait after a bind attempt failed for reason (not a
// credential refusal, which the auth gate handles). An SMSC that answered
// and refused gets steps from ReconnectDelay, as a flapping one: asking
// again at once would not change its mind. A failed dial steps from 1s to
// 30s at most.
func (c *Carrier) failureWait(b *backoff, reason string) time.Duration {
	if reason == reasonRefused {
		return b.nextIn(c.cfg.ReconnectDelay, b.max)
	}
	return b.nextIn(b.min, max(b.min, dialRetryMax))
}

// lossWait is the wait before redialling a bind lost after it was up for
// uptime. A stable bind is redialled at once, so that sends fail with 409
// for as short a time as possible; one that died young means an SMSC that
// unbinds or drops every session soon after accepting it, and it is not
// hammered.
func (c *Carrier) lossWait(b *backoff, uptime time.Duration) time.Duration {
	if uptime >= c.cfg.StableAfter {
		b.reset()
		return 0
	}
	return b.nextIn(c.cfg.ReconnectDelay, b.max)
}

// RetryAuthNow lets the binds that wait after the SMSC refused the
// carrier's credentials try again now (one bind first), instead of after
// AuthRetryDelay: a reload calls it for a carrier whose configuration did
// not change, because the operator may have fixed the account on the
// carrier's side. It does nothing when no bind waits for that reason. Safe
// for concurrent use.
func (c *Carrier) RetryAuthNow() { c.auth.retryNow() }

// authGate holds back every bind of a carrier after the SMSC refused its
// credentials. Carriers lock an account after a few bad logins, so while
// the credentials stand refused, one bind at a time (the probe) tries them
// again, AuthRetryDelay after the last refusal or after retryNow. A
// successful bind lifts the hold. Safe for concurrent use.
type authGate struct {
	mu      sync.Mutex
	blocked bool          // the credentials were refused and no bind succeeded since
	until   time.Time     // no probe before this
	probing bool          // a probe is under way
	change  chan struct{} // closed and replaced when the state changes
}

func newAuthGate() *authGate { return &authGate{change: make(chan struct{})} }

// changed wakes the binds waiting in enter. g.mu must be held.
func (g *authGate) changed() {
	close(g.change)
	g.change = make(chan struct{})
}

// enter waits until a bind may be tried. probe reports that the bind tries
// refused credentials again. It reports false when ctx ended first. Every
// call that returns ok must be followed by done.
func (g *authGate) enter(ctx context.Context) (probe, ok bool) {
	for {
		g.mu.Lock()
		if !g.blocked {
			g.mu.Unlock()
			return false, true
		}
		wait := time.Until(g.until)
		if !g.probing && wait <= 0 {
			g.probing = true
			g.mu.Unlock()
			return true, true
		}
		probing, ch := g.probing, g.change
		g.mu.Unlock()
		var t *time.Timer
		var fire <-chan time.Time
		if !probing {
			t = time.NewTimer(wait)
			fire = t.C
		}
		select {
		case <-ch:
		case <-fire:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return false, false
		}
	}
}

// done records the outcome of a bind attempt that passed enter: a
// credential refusal holds every bind for retry, a success lifts the
// hold, and any other failure leaves the verdict as it was (the next
// probe may go at once).
func (g *authGate) done(probe bool, err error, retry time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, refused := credentialsRefused(err); refused {
		g.blocked = true
		g.until = time.Now().Add(retry)
	} else if err == nil {
		g.blocked = false
	}
	if probe {
		g.probing = false
	}
	g.changed()
}

// retryNow lets the next probe go at once.
func (g *authGate) retryNow() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.blocked {
		g.until = time.Time{}
		g.changed()
	}
}

// credentialsRefused reports whether err is a bind_resp saying the
// credentials are wrong, with the status's SMPP name.
func credentialsRefused(err error) (status string, ok bool) {
	var se *StatusError
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Status {
	case StatusInvPaswd:
		return "ESME_RINVPASWD", true
	case StatusInvSysID:
		return "ESME_RINVSYSID", true
	case StatusInvSysTyp:
		return "ESME_RINVSYSTYP", true
	}
	return "", false
}

// bindFailureReason names why a bind attempt failed, with a fixed word fit
// for a metric label.
func bindFailureReason(err error) string {
	var (
		se *StatusError
		ne net.Error
		oe *net.OpError
	)
	switch {
	case errors.As(err, &se):
		switch se.Status {
		case StatusInvPaswd:
			return reasonInvalidPassword
		case StatusInvSysID:
			return reasonInvalidSystemID
		case StatusInvSysTyp:
			return reasonInvalidSystemType
		}
		return reasonRefused
	case errors.Is(err, errUnexpectedReply):
		return reasonRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return reasonTimeout
	case errors.Is(err, errHandshake),
		// crypto/tls reports an alert from the peer as this Op; with TLS
		// 1.3 a rejected client certificate shows up only on the first
		// read, the bind_resp's.
		errors.As(err, &oe) && oe.Op == "remote error":
		return reasonTLS
	}
	return reasonNetwork
}
