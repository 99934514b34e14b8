package smsc

import (
	"sync"
	"sync/atomic"
	"time"
)

// unbindGrace is how long a session the simulator unbinds (SetUnbindAfter)
// stays open for the client's unbind_resp before it is closed.
const unbindGrace = time.Second

// linkFaults are the scripted link-level misbehaviours of a Server.
type linkFaults struct {
	unbindAfter  atomic.Int64 // SetUnbindAfter; 0 off
	enquireDelay atomic.Int64 // SetEnquireLinkDelay; 0 at once, <0 never

	mu     sync.Mutex               // serialises SetSilent
	silent atomic.Pointer[struct{}] // non-nil while silent
	speak  chan struct{}            // closed when the silence ends; guarded by mu
}

// SetUnbindAfter makes the simulator send unbind d after each following
// successful bind, and close the connection a second later unless the
// client did: an SMSC that drops every session soon after accepting it
// (an overloaded or misconfigured one). 0 turns it off.
func (s *Server) SetUnbindAfter(d time.Duration) { s.link.unbindAfter.Store(int64(d)) }

// SetSilent makes the simulator stop answering and sending anything, on
// every connection, while keeping them open: PDUs from clients are read but
// not handled (binds and enquire_link included), and acks, receipts and
// enquire_link wait. It plays a hung SMSC or a half-open TCP connection.
// SetSilent(false) handles what was held, in order.
func (s *Server) SetSilent(on bool) {
	l := &s.link
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case on && l.silent.Load() == nil:
		l.speak = make(chan struct{})
		l.silent.Store(&struct{}{})
	case !on && l.silent.Load() != nil:
		l.silent.Store(nil)
		close(l.speak)
	}
}

// SetEnquireLinkDelay delays each following enquire_link_resp by d (on a
// timer, so the session keeps reading and answering everything else); a
// negative d never answers enquire_link. It plays an SMSC whose keepalive
// answers are late under load while its traffic still flows. 0 answers at
// once.
func (s *Server) SetEnquireLinkDelay(d time.Duration) { s.link.enquireDelay.Store(int64(d)) }

// hold waits while the simulator is silent. It reports false when the
// Server closed meanwhile.
func (s *Server) hold() bool {
	l := &s.link
	for l.silent.Load() != nil {
		l.mu.Lock()
		speak := l.speak
		l.mu.Unlock()
		if l.silent.Load() == nil {
			return true
		}
		select {
		case <-speak:
		case <-s.done:
			return false
		}
	}
	return true
}

// answerEnquireLink answers an enquire_link, at once or as
// SetEnquireLinkDelay says.
func (c *conn) answerEnquireLink(seq uint32) {
	resp := encodeHeaderOnly(idEnquireLinkResp, 0, seq)
	switch d := time.Duration(c.s.link.enquireDelay.Load()); {
	case d < 0:
	case d > 0:
		c.s.after(d, func() { c.write(resp) })
	default:
		c.write(resp)
	}
}

// scheduleUnbind arms SetUnbindAfter's timer for a session just bound.
func (c *conn) scheduleUnbind() {
	s := c.s
	d := time.Duration(s.link.unbindAfter.Load())
	if d <= 0 {
		return
	}
	s.after(d, func() {
		s.mu.Lock()
		if c.gone {
			s.mu.Unlock()
			return
		}
		c.gone = true // no longer Bound, no receipts
		sid := c.systemID
		s.mu.Unlock()
		s.stats.unbindsSent.Add(1)
		s.log.Info("unbinding client", "remote", c.remote, "system_id", sid)
		c.write(encodeHeaderOnly(idUnbind, 0, c.nextSeq()))
		s.after(unbindGrace, func() { c.nc.Close() })
	})
}
