package smpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/otpgate/otpgate/otp"
)

// ReceiptHandler takes the delivery receipts a carrier's sessions receive.
// HandleReceipt runs on a per-session worker goroutine, one receipt at a
// time; the deliver_sm_resp goes out after it returns: ESME_ROK on nil,
// ESME_RSYSERR on an error so that the SMSC sends the receipt again.
// HandleReceipt must therefore be idempotent.
type ReceiptHandler interface {
	HandleReceipt(ctx context.Context, r otp.Receipt) error
}

// ReceiptHandlerFunc adapts a function to ReceiptHandler.
type ReceiptHandlerFunc func(ctx context.Context, r otp.Receipt) error

// HandleReceipt calls f.
func (f ReceiptHandlerFunc) HandleReceipt(ctx context.Context, r otp.Receipt) error {
	return f(ctx, r)
}

// Receipt TLVs (SMPP 3.4 §5.3.2).
const (
	tagReceiptedMessageID = pdutlv.TagReceiptedMessageID // 0x001E, C-string
	tagMessageState       = pdutlv.TagMessageStateOption // 0x0427, 1 byte
	tagNetworkErrorCode   = pdutlv.TagNetworkErrorCode   // 0x0423, type + 2-byte code
	tagMessagePayload     = pdutlv.TagMessagePayload     // 0x0424
)

// receiptKeys are the fields of the receipt text (SMPP 3.4 Appendix B),
// longest first where one is a prefix of another.
var receiptKeys = []string{"submit date", "done date", "dlvrd", "stat", "text", "sub", "err", "id"}

// ParseReceipt reads a delivery receipt from a deliver_sm's esm_class,
// short_message and TLVs. It prefers the TLVs receipted_message_id and
// message_state, and falls back to the text
// "id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…"
// (keys in any case and order, any of them missing). The id is kept as
// written (trimmed, NUL stripped): the store matches its forms. DoneAt is
// the "done date" (YYMMDDhhmm[ss], UTC) or now. Carrier is left empty.
//
// It returns ErrNotReceipt when esm_class does not mark a receipt, and an
// error when no id or no state can be found. It never panics.
func ParseReceipt(esmClass byte, shortMessage []byte, tlvs pdutlv.Map, now time.Time) (otp.Receipt, error) {
	if esmClass&0x3C != 0x04 {
		return otp.Receipt{}, ErrNotReceipt
	}
	text := shortMessage
	if len(text) == 0 {
		if f := tlvs[tagMessagePayload]; f != nil {
			text = f.Bytes()
		}
	}
	fields := receiptFields(string(text))
	r := otp.Receipt{
		MessageID: firstToken(fields["id"]),
		State:     stateFromStat(firstToken(fields["stat"])),
		Error:     firstToken(fields["err"]),
		DoneAt:    now.UTC(),
	}
	if f := tlvs[tagReceiptedMessageID]; f != nil {
		if id := strings.TrimSpace(strings.TrimRight(string(f.Bytes()), "\x00")); id != "" {
			r.MessageID = id
		}
	}
	if f := tlvs[tagMessageState]; f != nil && len(f.Bytes()) == 1 {
		if st := stateFromTLV(f.Bytes()[0]); st != "" {
			r.State = st
		}
	}
	if r.Error == "" {
		if f := tlvs[tagNetworkErrorCode]; f != nil && len(f.Bytes()) == 3 {
			b := f.Bytes()
			r.Error = fmt.Sprintf("%03d", int(b[1])<<8|int(b[2]))
		}
	}
	if t, ok := parseReceiptDate(fields["done date"]); ok {
		// A date to the minute says "some time in that minute": when that
		// minute is the current one, the receipt's arrival is the closer
		// reading (and is never before the submit).
		if len(firstToken(fields["done date"])) == 10 && !now.Before(t) && now.Sub(t) < time.Minute {
			t = now.UTC()
		}
		r.DoneAt = t
	}
	switch {
	case r.MessageID == "":
		return otp.Receipt{}, errors.New("smpp: receipt: no message id")
	case r.State == "":
		return otp.Receipt{}, errors.New("smpp: receipt: no state")
	}
	return r, nil
}

// receiptFields splits a receipt text into its key:value fields. A key
// counts only at the start or after white space; the first occurrence of a
// key wins (a "text:" field quoting the message cannot override the real
// fields before it), and a value runs to the next key.
func receiptFields(s string) map[string]string {
	lower := asciiLower(s) // same byte offsets as s, unlike strings.ToLower
	type hit struct {
		key        string
		start, val int
	}
	var hits []hit
	seen := make(map[string]bool, len(receiptKeys))
	for i := 0; i < len(lower); i++ {
		if i > 0 && !isSpace(lower[i-1]) {
			continue
		}
		for _, k := range receiptKeys {
			if strings.HasPrefix(lower[i:], k) && len(lower) > i+len(k) && lower[i+len(k)] == ':' {
				hits = append(hits, hit{key: k, start: i, val: i + len(k) + 1})
				break
			}
		}
	}
	out := make(map[string]string, len(hits))
	for j, h := range hits {
		end := len(s)
		if j+1 < len(hits) {
			end = hits[j+1].start
		}
		if seen[h.key] {
			continue
		}
		seen[h.key] = true
		out[h.key] = strings.TrimSpace(s[h.val:end])
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 }

// firstToken returns v up to its first white space.
func firstToken(v string) string {
	v = strings.TrimSpace(strings.Trim(v, "\x00"))
	if i := strings.IndexAny(v, " \t\r\n\x00"); i >= 0 {
		v = v[:i]
	}
	return v
}

// stateFromStat maps a receipt's stat: value; unknown words map to UNKNOWN,
// an empty one to "".
func stateFromStat(s string) otp.State {
	switch strings.ToUpper(s) {
	case "":
		return ""
	case "DELIVRD", "DELIVERED":
		return otp.StateDelivered
	case "UNDELIV", "UNDELIVERABLE":
		return otp.StateUndeliverable
	case "EXPIRED":
		return otp.StateExpired
	case "REJECTD", "REJECTED":
		return otp.StateRejected
	case "DELETED":
		return otp.StateDeleted
	case "ACCEPTD", "ACCEPTED", "ENROUTE":
		return otp.StateAccepted
	default:
		return otp.StateUnknown
	}
}

// stateFromTLV maps message_state (SMPP 3.4 §5.2.28).
func stateFromTLV(b byte) otp.State {
	switch b {
	case 1, 6: // ENROUTE, ACCEPTED
		return otp.StateAccepted
	case 2:
		return otp.StateDelivered
	case 3:
		return otp.StateExpired
	case 4:
		return otp.StateDeleted
	case 5:
		return otp.StateUndeliverable
	case 7:
		return otp.StateUnknown
	case 8:
		return otp.StateRejected
	}
	return ""
}

// parseReceiptDate parses YYMMDDhhmm or YYMMDDhhmmss as UTC.
func parseReceiptDate(v string) (time.Time, bool) {
	v = firstToken(v)
	var layout string
	switch len(v) {
	case 10:
		layout = "0601021504"
	case 12:
		layout = "060102150405"
	default:
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(layout, v, time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
