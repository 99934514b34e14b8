package otp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/otpgate/otpgate/phone"
)

// MO is a mobile-originated SMS (a deliver_sm or data_sm that is not a
// delivery receipt) as a carrier passed it on.
type MO struct {
	Carrier    string
	From       string // source address as the carrier wrote it
	FromTON    uint8  // its type of number: 1 international, 0 unknown, 2 national, 5 alphanumeric...
	To         string // destination address: one of our senders
	Text       string // decoded by data_coding, UDH removed
	ReceivedAt time.Time
}

// MOQueue is the durable callback queue the MO messages are put on; the
// dispatcher of the receipt callbacks delivers them.
type MOQueue interface {
	// QueueCallback stores cb, due at cb.Due. A nil error means it is on
	// disk.
	QueueCallback(ctx context.Context, cb Callback) error
}

// ErrNoSettings means the MO handler has no client settings yet (the
// gateway is starting): the carrier should send the MO again.
var ErrNoSettings = errors.New("otp: mo: no client settings yet")

// Inbox takes the MO messages carriers pass on: it counts and logs each
// (the number masked, the text never), and queues a callback for the
// client whose sender is the MO's destination, when that client has an
// mo_callback_url. Its methods are safe for concurrent use.
type Inbox struct {
	queue    MOQueue
	settings func() *Settings
	log      *slog.Logger
	now      func() time.Time
	// Received, when set, is called with the carrier of each MO handled
	// (queued, or dropped for want of a client): for a metric.
	Received func(carrier string)
}

// NewInbox returns an MO handler that queues callbacks on queue, reading
// clients from settings at each MO (so a reload applies at once).
func NewInbox(queue MOQueue, settings func() *Settings, logger *slog.Logger) *Inbox {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Inbox{queue: queue, settings: settings, log: logger, now: time.Now}
}

// HandleMO queues mo for its client. An error means it was not stored and
// the carrier should be asked to send it again; an MO that no client takes
// is logged, counted and dropped (nil).
func (h *Inbox) HandleMO(ctx context.Context, mo MO) error {
	s := h.settings()
	if s == nil {
		return ErrNoSettings
	}
	from := moFrom(mo.From, mo.FromTON)
	clientID, url, ok := s.moClient(mo.To)
	lg := h.log.With(keyCarrier, mo.Carrier, keyFrom, maskAddress(from), keyTo, mo.To, keyLength, len([]rune(mo.Text)))
	if !ok || url == "" {
		lg.Info("mo received: no client takes it", "client", clientID)
		h.received(mo.Carrier)
		return nil
	}
	id, err := newMOID()
	if err != nil {
		return err
	}
	now := h.now()
	at := mo.ReceivedAt
	if at.IsZero() {
		at = now
	}
	cb := Callback{ID: id, Kind: CallbackMO, ClientID: clientID, Carrier: mo.Carrier, From: from, To: mo.To,
		Text: mo.Text, DoneAt: at, FirstAt: now, Due: now}
	if err := h.queue.QueueCallback(ctx, cb); err != nil {
		return fmt.Errorf("otp: mo: %w", err)
	}
	lg.Info("mo received", "client", clientID)
	h.received(mo.Carrier)
	return nil
}

func (h *Inbox) received(carrier string) {
	if h.Received != nil {
		h.Received(carrier)
	}
}

func newMOID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("otp: mo id: %w", err)
	}
	return "mo" + hex.EncodeToString(b[:]), nil
}

// moFrom writes an MO's source address as full E.164 with '+' when it is
// one: type of number 1 (international), or 0 (unknown) when the digits
// (after a '+' or "00" some SMSCs keep) are a valid number with their
// country code. Anything else (national, alphanumeric, short codes) is
// returned as the carrier wrote it: there is no country to complete it
// with.
func moFrom(addr string, ton uint8) string {
	addr = strings.TrimSpace(addr)
	digits := strings.TrimPrefix(addr, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return addr
	}
	switch ton {
	case 1:
		return "+" + strings.TrimPrefix(digits, "00")
	case 0:
		d := digits
		if !strings.HasPrefix(addr, "+") {
			d = strings.TrimPrefix(digits, "00")
		}
		if _, err := phone.Parse("+" + d); err == nil {
			return "+" + d
		}
	}
	return addr
}

// maskAddress masks a subscriber address for logs as the rest of the
// gateway does ("+91-98******10"); an address that is not a valid number
// keeps only its last two characters.
func maskAddress(a string) string {
	if n, err := phone.Parse(a); err == nil {
		return n.Masked()
	}
	r := []rune(a)
	if len(r) <= 2 {
		return strings.Repeat("*", len(r))
	}
	return strings.Repeat("*", len(r)-2) + string(r[len(r)-2:])
}

// SenderKey is how an MO's destination is compared with a client's
// sender: two senders are the same when their keys are. A numeric sender
// keeps its digits ('+' and a leading "00" dropped), any other its text
// in upper case, spaces trimmed.
func SenderKey(s string) string {
	s = strings.TrimSpace(s)
	d := strings.TrimPrefix(s, "+")
	if d != "" && strings.Trim(d, "0123456789") == "" {
		return "#" + strings.TrimPrefix(d, "00")
	}
	return strings.ToUpper(s)
}

// indexMOSenders maps sender keys to the first client, in config order,
// that has that sender and an mo_callback_url.
func indexMOSenders(clients []Client) map[string]string {
	m := map[string]string{}
	for _, c := range clients {
		if c.MOCallbackURL == "" {
			continue
		}
		k := SenderKey(c.Sender)
		if _, taken := m[k]; !taken {
			m[k] = c.ID
		}
	}
	return m
}

// moClient returns the client that takes MOs to the address to, and its
// mo_callback_url.
func (s *Settings) moClient(to string) (clientID, url string, ok bool) {
	id, ok := s.moSenders[SenderKey(to)]
	if !ok {
		return "", "", false
	}
	c := s.clients[id]
	if c == nil {
		return "", "", false
	}
	return id, c.MOCallbackURL, true
}
