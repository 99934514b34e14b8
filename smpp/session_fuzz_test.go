package smpp

import (
	"context"
	"testing"
	"time"
)

// FuzzSessionPDU feeds a bound session arbitrary PDUs from the SMSC side
// (a framed PDU with any command id, status and body, or raw bytes): the
// session never panics, answers what it must, and either stays usable
// (a submit afterwards succeeds) or dies cleanly, never hangs.
func FuzzSessionPDU(f *testing.F) {
	f.Add(uint32(0x00000005), uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), false) // deliver_sm
	f.Add(uint32(0x00000103), uint32(0), []byte{}, false)                                                                                   // data_sm
	f.Add(uint32(0x80000004), uint32(0), []byte("1\x00"), false)                                                                            // stray submit_sm_resp
	f.Add(uint32(0x00000015), uint32(0), []byte{}, false)                                                                                   // enquire_link
	f.Add(uint32(0x00000006), uint32(0), []byte{}, false)                                                                                   // unbind
	f.Add(uint32(0x12345678), uint32(0), []byte{1, 2, 3}, false)
	f.Add(uint32(0), uint32(0), []byte{0, 0, 0, 5, 1}, true) // broken length
	f.Fuzz(func(t *testing.T, id, status uint32, body []byte, raw bool) {
		if len(body) > 70000 {
			return
		}
		s, p := startPeer(t, sessionConfig{Kind: bindTransceiver, Handler: newReceipts(), EnquireLink: time.Hour})
		defer s.close()
		defer p.conn.Close()
		if raw {
			p.write(body)
		} else {
			p.write(frame(id, status, 7, body))
		}
		// Drain what the session answers so that it never blocks writing.
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := p.conn.Read(buf); err != nil {
					return
				}
			}
		}()
		// Usable or dead, within a bound: a submit either gets its answer
		// from nobody (ctx deadline) or fails because the session died.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := s.request(ctx, submitSM(), 0x80000004, true)
		if err == nil {
			t.Fatal("a submit nobody answered succeeded")
		}
		select {
		case <-s.dead:
		case <-time.After(time.Millisecond):
		}
	})
}
