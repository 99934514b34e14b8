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
	retryTexts = 65536 // texts kept for retries: about 8 MB at most
	retryQueue = 1024  // failed messages waiting for a retry
)

// textCache keeps the texts of live codes by request id, oldest first out.
type textCache struct {
	mu    sync.Mutex
	max   int
	byID  map[string]cachedText
	order []string // request ids, oldest first; may hold ids already gone
}

type cachedText struct {
	text, masked string
	tlvs         []TLV // the client's and text's, as the first send had them
	expires      time.Time
}

func newTextCache(max int) *textCache {
	return &textCache{max: max, byID: make(map[string]cachedText)}
}

// put keeps text until expires, dropping expired and, past max, the oldest
// entries.
func (c *textCache) put(id string, sms SMS, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 {
		old := c.order[0]
		e, ok := c.byID[old]
		if ok && len(c.byID) < c.max && now.Before(e.expires) {
			break
		}
		delete(c.byID, old)
		c.order[0] = ""
		c.order = c.order[1:]
	}
	if len(c.order) == 0 {
		c.order = nil // let the old backing array go
	}
	c.byID[id] = cachedText{text: sms.Text, masked: sms.Masked, tlvs: sms.TLVs, expires: expires}
	c.order = append(c.order, id)
}

// take returns and forgets the text of id while it is live.
func (c *textCache) take(id string, now time.Time) (cachedText, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	delete(c.byID, id)
	return e, ok && now.Before(e.expires)
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
