package otp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/otpgate/otpgate/internal/redact"
)

// Code is an OTP code. Every way a value is commonly printed hides it:
// Format and String (every fmt verb), GoString (%#v, which would otherwise
// print the digits in Go syntax, also inside a struct), LogValue (slog's
// text and JSON handlers) and MarshalJSON (json.Marshal of a struct
// holding one, and slog's JSON handler for such a struct). Reveal gives
// the digits. fmt prints a Code held in an unexported struct field by
// reflection, past these methods: never print such a struct whole.
type Code string

// redacted is what a Code shows instead of its digits.
const redacted = redact.Text

// String hides the code.
func (Code) String() string { return redacted }

// GoString hides the code from %#v.
func (Code) GoString() string { return `otp.Code("` + redacted + `")` }

// Format hides the code from every fmt verb, %d and %x included: without
// it, a verb that does not consult String (%d) prints the digits.
func (c Code) Format(f fmt.State, verb rune) { redact.Format(f, verb, c.GoString()) }

// LogValue hides the code from slog.
func (Code) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON hides the code from encoding/json: a Code is never part of
// a stored or served JSON document, only its HMAC is.
func (Code) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Reveal returns the digits, for the SMS text and the hash only.
func (c Code) Reveal() string { return string(c) }

// NewCode returns n decimal digits read from r (crypto/rand in production).
// Each digit comes from one byte below 250 (bytes 250-255 are discarded), so
// every digit is uniform: there is no modulo bias.
func NewCode(r io.Reader, n int) (Code, error) {
	if n < 1 || n > 16 {
		return "", fmt.Errorf("otp: code length %d out of range", n)
	}
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2+2)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("otp: read random: %w", err)
		}
		for _, b := range buf {
			if b < 250 && len(out) < n {
				out = append(out, '0'+b%10)
			}
		}
	}
	return Code(out), nil
}

// codeHasher computes code hashes with HMACs kept for reuse: a new HMAC
// first hashes its key's two pads and allocates, a reset one restores
// them (BenchmarkCodeHasher on the project's 2-core machine: 248-262 ns
// and 1 allocation a hash against 839-871 ns and 9).
type codeHasher struct{ macs sync.Pool }

// codeMAC is an HMAC of the secret and the buffer its input is put in.
type codeMAC struct {
	h   hash.Hash
	buf []byte
}

func newCodeHasher(secret []byte) *codeHasher {
	secret = bytes.Clone(secret)
	c := &codeHasher{}
	c.macs.New = func() any {
		h := hmac.New(sha256.New, secret)
		// The first Reset saves the state after the key's pad; every later
		// one restores it whole, which overwrites what the last input left
		// in the digest's block buffer.
		h.Reset()
		return &codeMAC{h: h}
	}
	return c
}

// maxPooledInput is the largest input buffer a pooled HMAC keeps: a guess
// as long as a request body may be does not stay in the pool.
const maxPooledInput = 256

// hash returns HMAC-SHA256(secret, key || 0 || code): binding the hash to
// the record key means a stored hash says nothing about another number's
// code. The pooled HMAC and its buffer do not keep the key or the code.
func (c *codeHasher) hash(key string, code string) []byte {
	m := c.macs.Get().(*codeMAC)
	sum := m.sum(key, code)
	c.macs.Put(m)
	return sum
}

// sum returns the HMAC of key || 0 || code and leaves m reset, its
// buffer zeroed, or dropped when it grew past maxPooledInput.
func (m *codeMAC) sum(key string, code string) []byte {
	m.buf = append(append(append(m.buf[:0], key...), 0), code...)
	m.h.Write(m.buf)
	sum := m.h.Sum(make([]byte, 0, sha256.Size))
	clear(m.buf)
	if cap(m.buf) > maxPooledInput {
		m.buf = nil
	}
	m.h.Reset()
	return sum
}

// newRequestID returns 12 bytes in hex: the milliseconds from
// requestIDEpoch to now in the first 5 (big-endian, wrapping after 34
// years), then 7 random bytes.
//
// The time first makes the ids of a gateway increase: the store keeps
// messages under their ids for days, and ids that sort by time land at the
// end of its tables instead of all over them, which makes each compaction
// of those tables rewrite far less (docs/performance.md). Ids stay
// unguessable (56 random bits; status answers only the client that sent)
// and unique: two sends in the same millisecond collide with a
// probability of 2^-56.
func newRequestID(r io.Reader, now time.Time) (string, error) {
	var b [12]byte
	ms := uint64(now.Sub(requestIDEpoch).Milliseconds())
	for i := 4; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := io.ReadFull(r, b[5:]); err != nil {
		return "", fmt.Errorf("otp: request id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// requestIDEpoch is the zero of request ids' time.
var requestIDEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// defaultRand is the source of codes and ids in production.
var defaultRand io.Reader = rand.Reader
