package smpp

import (
	"errors"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// DefaultEnquireLink is the interval of enquire_link when
// CarrierOptions.EnquireLink is zero.
const DefaultEnquireLink = defaultEnquire

var errInactive = errors.New("smpp: no pdu from the smsc in time")

// heard records that a PDU was read: any PDU shows the peer alive.
func (s *session) heard() { s.lastRead.Store(int64(time.Since(s.born))) }

// idle returns how long ago the last PDU was read.
func (s *session) idle() time.Duration {
	return time.Since(s.born) - time.Duration(s.lastRead.Load())
}

// pingAnswer reports whether frame is an enquire_link_resp: the answer to
// our keepalive, which nothing waits for; being read was its whole use.
func pingAnswer(frame []byte) bool {
	id, _, _ := header(frame)
	return id == pdu.EnquireLinkRespID
}

// aliveLoop writes an enquire_link every EnquireLink without waiting for
// its answer, and ends the session when no PDU at all was read for
// InactivityTimeout. An SMSC busy enough to answer an enquire_link late
// is still sending responses or deliver_sm, and keeps its session; a dead
// peer (or a half-open TCP connection) sends nothing and loses it.
func (s *session) aliveLoop() {
	defer s.wg.Done()
	ping := time.NewTicker(s.cfg.EnquireLink)
	defer ping.Stop()
	check := time.NewTimer(s.cfg.InactivityTimeout)
	defer check.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-ping.C:
			s.send(withSeq(pdu.NewEnquireLink(), s.nextSeq(), 0))
		case <-check.C:
			idle := s.idle()
			if idle >= s.cfg.InactivityTimeout {
				s.log.Warn("smsc silent, dropping session", keyIdle, idle.Round(time.Millisecond),
					keyTimeout, s.cfg.InactivityTimeout)
				s.kill(errInactive)
				return
			}
			check.Reset(s.cfg.InactivityTimeout - idle)
		}
	}
}
