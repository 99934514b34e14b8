package otp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/otpgate/otpgate/phone"
)

// Receipt-driven retry: when a receipt says a message will never arrive
// (UNDELIVERABLE, EXPIRED, REJECTED) while its code is still live, the
// same text goes once more through another carrier of the route. Only an
// HMAC of a code is stored, so the texts of recent sends are kept in
// memory, bounded, for this: after a restart, or for the sends past the
// newest retryTexts, there is no retry.
const (
	retryTexts = 65536 // texts kept for retries (textCache), the newest sends
	retryQueue = 1024  // failed messages waiting for a retry
)

// textCache keeps the texts of the newest max sends by request id, oldest
// first out, in a ring allocated once and indexed by a map of positions. A
// text taken for its retry leaves at once; its slot counts until it is the
// oldest.
// (A map of the entries themselves, churned by a put and a removal per
// send, held 228 bytes an entry against 133 for the ring and index, in
// TestTextCache_Memory.)
type textCache struct {
	mu       sync.Mutex
	max      int
	ring     []cachedText // len max once the first text is put
	start, n int          // the oldest entry's position; entries in use from there, taken ones included
	byID     map[string]int
}

type cachedText struct {
	id           string // "" once taken
	text, masked string
	tlvs         []TLV // the client's and text's, as the first send had them
	expires      int64 // Unix nanoseconds
}

func newTextCache(size int) *textCache {
	return &textCache{max: max(size, 1), byID: make(map[string]int)}
}

// put keeps text until expires, dropping from the oldest end the entries
// taken or expired and, past max, the oldest live one.
func (c *textCache) put(id string, sms SMS, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring == nil {
		c.ring = make([]cachedText, c.max)
	}
	t := now.UnixNano()
	for c.n > 0 {
		e := &c.ring[c.start]
		if e.id != "" && c.n < c.max && t < e.expires {
			break
		}
		if i, ok := c.byID[e.id]; ok && i == c.start {
			delete(c.byID, e.id)
		}
		*e = cachedText{} // the text, and its code, leave memory
		c.start = (c.start + 1) % c.max
		c.n--
	}
	i := (c.start + c.n) % c.max
	c.ring[i] = cachedText{id: id, text: sms.Text, masked: sms.Masked, tlvs: sms.TLVs, expires: expires.UnixNano()}
	c.byID[id] = i
	c.n++
}

// take returns and forgets the text of id while it is live.
func (c *textCache) take(id string, now time.Time) (cachedText, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.byID[id]
	if !ok {
		return cachedText{}, false
	}
	delete(c.byID, id)
	e := c.ring[i]
	c.ring[i] = cachedText{}
	return e, now.UnixNano() < e.expires
}

// RetryFailed queues msg, which a receipt just made UNDELIVERABLE, EXPIRED
// or REJECTED, for a retry through another carrier (see Run). It never
// blocks: without Run, or with the queue full, msg is not retried.
func (s *Service) RetryFailed(msg Message) {
	if !s.settings.Load().Policy.RetryUndelivered || len(msg.Earlier) > 0 {
		return
	}
	s.runMu.RLock()
	defer s.runMu.RUnlock()
	if !s.running {
		return
	}
	select {
	case s.retries <- msg:
	default:
		s.log.Warn("retry queue full: failed delivery not retried", keyRequestID, msg.RequestID)
	}
}

// retry sends msg's text once more, avoiding the carriers that failed it,
// when its code is still the live one of its number.
func (s *Service) retry(ctx context.Context, msg Message) {
	st := s.settings.Load()
	now := s.now()
	t, ok := s.texts.take(msg.RequestID, now)
	if !ok {
		return // expired, retried already, or sent before a restart
	}
	c, ok := st.clients[msg.ClientID]
	if !ok {
		return
	}
	key := RecordKey(msg.ClientID, msg.Number)
	rec, err := s.store.GetOTP(ctx, key)
	if err != nil || rec.RequestID != msg.RequestID || rec.CodeHash == nil || !now.Before(rec.ExpiresAt) {
		return // verified, replaced by a newer send, or expired
	}
	num, err := phone.Parse("+" + msg.Number)
	if err != nil {
		return
	}
	avoid := []string{msg.Carrier}
	for _, a := range msg.Earlier {
		avoid = append(avoid, a.Carrier)
	}
	sctx, cancel := context.WithTimeout(ctx, st.Policy.SubmitTimeout)
	sent, err := s.sender.Send(sctx, SMS{RequestID: msg.RequestID, ClientID: c.ID, Source: c.Sender, To: msg.Number,
		MaskedTo: msg.Display, Country: num.Country, CountryCode: num.CC, Text: t.text, Masked: t.masked,
		Expires: rec.ExpiresAt, TLVs: t.tlvs, Avoid: avoid})
	cancel()
	if err != nil {
		s.log.Info("failed delivery not retried: no other carrier took it", keyRequestID, msg.RequestID,
			keyCarrier, msg.Carrier, keyError, err)
		return
	}
	a := Attempt{Carrier: sent.Carrier, SubmittedAt: now}
	for _, id := range sent.MessageIDs {
		a.Parts = append(a.Parts, Part{MessageID: id, State: StateAccepted})
	}
	if _, err := s.receipts.RecordRetry(context.WithoutCancel(ctx), msg.RequestID, a); err != nil && !errors.Is(err, ErrRequestNotFound) {
		s.log.Warn("recording a retry failed", keyRequestID, msg.RequestID, keyError, err)
		return
	}
	s.log.Info("failed delivery retried through another carrier", keyRequestID, msg.RequestID,
		keyFailedCarrier, msg.Carrier, keyCarrier, sent.Carrier, keyNumber, msg.Display)
}
