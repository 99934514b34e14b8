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
	mu      sync.Mutex
	numbers map[uint64]received // by numberKey(destination)
	others  map[string]received // destinations numberKey cannot pack (not 1 to 17 digits)
}

// received is what a destination got: the code of its last SMS, until Code
// takes it, and how many SMS.
type received struct {
	code  smsCode
	count int32
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
	return &Handset{numbers: map[uint64]received{}, others: map[string]received{}}
}

// Received counts the SMS received for numbers (E.164 digits) that start
// with prefix.
func (h *Handset) Received(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, r := range h.numbers {
		if strings.HasPrefix(keyNumber(k), prefix) {
			n += int(r.count)
		}
	}
	for dst, r := range h.others {
		if strings.HasPrefix(dst, prefix) {
			n += int(r.count)
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
	if k, packed := numberKey(e164); packed {
		c = takeCode(h.numbers, k)
	} else {
		c = takeCode(h.others, e164)
	}
	h.mu.Unlock()
	return c.String(), c.n > 0
}

// record keeps the code of an SMS text to dst.
func (h *Handset) record(dst, text string) {
	var c smsCode
	c.n = uint8(copy(c.d[:], codeRE.FindString(text)))
	h.mu.Lock()
	defer h.mu.Unlock()
	if k, ok := numberKey(dst); ok {
		addSMS(h.numbers, k, c)
	} else {
		addSMS(h.others, dst, c)
	}
}

// takeCode returns and forgets the code k's last SMS had.
func takeCode[K comparable](m map[K]received, k K) smsCode {
	r, ok := m[k]
	if !ok {
		return smsCode{}
	}
	c := r.code
	r.code = smsCode{}
	m[k] = r
	return c
}

// addSMS counts an SMS to k and keeps its code.
func addSMS[K comparable](m map[K]received, k K, c smsCode) {
	r := m[k]
	r.code = c
	r.count++
	m[k] = r
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
