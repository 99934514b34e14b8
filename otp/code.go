package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"
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
const redacted = "[REDACTED]"

// String hides the code.
func (Code) String() string { return redacted }

// GoString hides the code from %#v.
func (Code) GoString() string { return `otp.Code("` + redacted + `")` }

// Format hides the code from every fmt verb, %d and %x included: without
// it, a verb that does not consult String (%d) prints the digits.
func (c Code) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, c.GoString())
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), redacted)
}

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

// hashCode returns HMAC-SHA256(secret, key || 0 || code): binding the hash to
// the record key means a stored hash says nothing about another number's code.
func hashCode(secret []byte, key string, code string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
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
