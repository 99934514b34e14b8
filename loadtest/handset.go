package loadtest

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Handset collects the codes of the SMS a simulator accepts, as the handset
// would read them. Install Handler as the simulator's logger handler: it
// keeps the text of each "sms received" record and passes every other
// record to the handler it wraps. It is safe for concurrent use.
type Handset struct {
	mu     sync.Mutex
	texts  map[string]string // destination -> last text
	counts map[string]int    // destination -> SMS received
}

// NewHandset returns an empty Handset.
func NewHandset() *Handset { return &Handset{texts: map[string]string{}, counts: map[string]int{}} }

// Received counts the SMS received for numbers (E.164 digits) that start
// with prefix.
func (h *Handset) Received(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for dst, c := range h.counts {
		if strings.HasPrefix(dst, prefix) {
			n += c
		}
	}
	return n
}

// codeRE is a code in an SMS text: the first run of 4 to 8 digits.
var codeRE = regexp.MustCompile(`\b\d{4,8}\b`)

// Code returns and forgets the code of the last SMS to e164 (digits only).
// It implements Options.Codes.
func (h *Handset) Code(e164 string) (string, bool) {
	h.mu.Lock()
	text, ok := h.texts[e164]
	delete(h.texts, e164)
	h.mu.Unlock()
	if !ok {
		return "", false
	}
	code := codeRE.FindString(text)
	return code, code != ""
}

// Handler returns a slog.Handler that records "sms received" in h and
// passes the other records to next.
func (h *Handset) Handler(next slog.Handler) slog.Handler { return handsetHandler{h: h, next: next} }

type handsetHandler struct {
	h    *Handset
	next slog.Handler
}

func (hh handsetHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || hh.next.Enabled(ctx, l)
}

func (hh handsetHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "sms received" {
		if hh.next.Enabled(ctx, r.Level) {
			return hh.next.Handle(ctx, r)
		}
		return nil
	}
	var dst, text string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "dst":
			dst = a.Value.String()
		case "text":
			text = a.Value.String()
		}
		return true
	})
	if dst != "" {
		hh.h.mu.Lock()
		hh.h.texts[dst] = text
		hh.h.counts[dst]++
		hh.h.mu.Unlock()
	}
	return nil
}

func (hh handsetHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return handsetHandler{h: hh.h, next: hh.next.WithAttrs(as)}
}

func (hh handsetHandler) WithGroup(name string) slog.Handler {
	return handsetHandler{h: hh.h, next: hh.next.WithGroup(name)}
}
