package loadtest

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Handset collects the codes of the SMS a simulator accepts, as the handset
// would read them. Install Handler as the simulator's logger handler: it
// keeps the text of each "sms received" record and passes every other
// record to the handler it wraps. It is safe for concurrent use.
//
// A soak stores a code for each of a million numbers: the maps keyed by
// number hold no pointers, so the GC does not scan them, and the load
// tool's own CPU per request does not grow with the numbers sent (it
// shares the machine with the gateway it measures).
type Handset struct {
	mu     sync.Mutex
	codes  map[uint64]smsCode // numberKey(destination) -> code of its last SMS
	counts map[uint64]int32   // numberKey(destination) -> SMS received
	// Destinations numberKey cannot pack (not 1 to 17 digits).
	otherCodes  map[string]smsCode
	otherCounts map[string]int32
}

// smsCode is the code of an SMS text: the first run of 4 to 8 digits; n is
// 0 when the text has none.
type smsCode struct {
	d [8]byte
	n uint8
}

func (c smsCode) String() string { return string(c.d[:c.n]) }

// numberKey packs a destination of 1 to 17 digits and its length into a
// uint64.
func numberKey(dst string) (uint64, bool) {
	if len(dst) == 0 || len(dst) > 17 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(dst); i++ {
		c := dst[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return uint64(len(dst))<<57 | v, true
}

// keyNumber is the destination numberKey packed.
func keyNumber(k uint64) string {
	n := int(k >> 57)
	s := strconv.FormatUint(k&(1<<57-1), 10)
	return strings.Repeat("0", n-len(s)) + s
}

// NewHandset returns an empty Handset.
func NewHandset() *Handset {
	return &Handset{codes: map[uint64]smsCode{}, counts: map[uint64]int32{},
		otherCodes: map[string]smsCode{}, otherCounts: map[string]int32{}}
}

// Received counts the SMS received for numbers (E.164 digits) that start
// with prefix.
func (h *Handset) Received(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, c := range h.counts {
		if strings.HasPrefix(keyNumber(k), prefix) {
			n += int(c)
		}
	}
	for dst, c := range h.otherCounts {
		if strings.HasPrefix(dst, prefix) {
			n += int(c)
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
	var c smsCode
	var ok bool
	if k, packed := numberKey(e164); packed {
		c, ok = h.codes[k]
		delete(h.codes, k)
	} else {
		c, ok = h.otherCodes[e164]
		delete(h.otherCodes, e164)
	}
	h.mu.Unlock()
	return c.String(), ok && c.n > 0
}

// record keeps the code of an SMS text to dst.
func (h *Handset) record(dst, text string) {
	var c smsCode
	c.n = uint8(copy(c.d[:], codeRE.FindString(text)))
	h.mu.Lock()
	defer h.mu.Unlock()
	if k, ok := numberKey(dst); ok {
		h.codes[k] = c
		h.counts[k]++
		return
	}
	h.otherCodes[dst] = c
	h.otherCounts[dst]++
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
		hh.h.record(dst, text)
	}
	return nil
}

func (hh handsetHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return handsetHandler{h: hh.h, next: hh.next.WithAttrs(as)}
}

func (hh handsetHandler) WithGroup(name string) slog.Handler {
	return handsetHandler{h: hh.h, next: hh.next.WithGroup(name)}
}
