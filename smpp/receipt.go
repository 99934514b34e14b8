package smpp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/otpgate/otpgate/otp"
)

// ReceiptHandler takes the delivery receipts a carrier's sessions receive.
// HandleReceipt runs on a session's receipt workers (16 per session, so
// calls are concurrent), never on its reader; the deliver_sm_resp (or
// data_sm_resp) goes out after it returns: ESME_ROK on nil,
// ESME_RX_T_APPN (0x64, a temporary error) on an error so that the SMSC
// sends the receipt again. HandleReceipt must therefore be idempotent and
// safe for concurrent use.
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

// esm_class bits of a deliver_sm or data_sm (SMPP 3.4 §5.2.12).
const (
	esmTypeMask    byte = 0x3C // message type bits 5..2
	esmTypeReceipt byte = 0x04 // SMSC delivery receipt
)

// The fields of the receipt text (SMPP 3.4 Appendix B), in the order
// receiptFields tries them: longest first where one is a prefix of
// another.
const (
	fieldSubmitDate = iota
	fieldDoneDate
	fieldDlvrd
	fieldStat
	fieldText
	fieldSub
	fieldErr
	fieldID
	numFields
)

// receiptKeys are the fields' keys, by field.
var receiptKeys = [numFields]string{fieldSubmitDate: "submit date", fieldDoneDate: "done date", fieldDlvrd: "dlvrd",
	fieldStat: "stat", fieldText: "text", fieldSub: "sub", fieldErr: "err", fieldID: "id"}

// receiptText holds a receipt text's fields by their index in receiptKeys;
// a field that is missing is "".
type receiptText [numFields]string

// ParseReceipt reads a delivery receipt from a deliver_sm's (or data_sm's)
// esm_class, short_message and TLVs, with a done date in UTC; see
// parseReceipt for the rules. It returns ErrNotReceipt when nothing marks
// a receipt, and an error when no id or no state can be found. It never
// panics.
func ParseReceipt(esmClass byte, shortMessage []byte, tlvs pdutlv.Map, now time.Time) (otp.Receipt, error) {
	m := make(map[uint16][]byte, len(tlvs))
	for t, f := range tlvs {
		if f != nil {
			m[uint16(t)] = f.Bytes()
		}
	}
	r, _, err := parseReceipt(esmClass, shortMessage, m, now, time.UTC)
	return r, err
}

// parseReceipt reads a delivery receipt. A PDU is one when esm_class says
// so (type bits 0x04, whatever the UDHI and other bits), or when it carries
// the receipted_message_id or message_state TLV, or when its text is the
// receipt text "id:… sub:… dlvrd:… submit date:… done date:… stat:… err:…
// text:…" (starting with id:, with a stat: field): carriers that mark
// receipts as plain messages exist. With the UDHI bit the text may follow
// a user data header, which is skipped.
//
// The TLVs receipted_message_id and message_state win over the text (keys
// in any case and order, any of them missing). The id is kept as written
// (trimmed, NUL stripped): the store matches its forms. DoneAt is the
// "done date" (YYMMDDhhmm[ss]) read in loc, or now; a done date after now
// (a carrier clock or zone that is off) is now. Carrier is left empty.
// stat is the stat: word when it is not one this package knows (the
// receipt is then taken as intermediate: ACCEPTED), else "".
func parseReceipt(esmClass byte, sm []byte, tlvs map[uint16][]byte, now time.Time, loc *time.Location) (r otp.Receipt, stat string, err error) {
	if loc == nil {
		loc = time.UTC
	}
	text := sm
	if len(text) == 0 {
		text = tlvs[uint16(tagMessagePayload)]
	}
	if esmClass&ESMClassUDHI != 0 && !startsWithID(text) {
		if _, rest, ok := splitUDH(text); ok {
			text = rest
		}
	}
	fields := receiptFields(string(text))
	_, hasID := tlvs[uint16(tagReceiptedMessageID)]
	_, hasState := tlvs[uint16(tagMessageState)]
	isText := startsWithID(text) && fields[fieldStat] != ""
	if esmClass&esmTypeMask != esmTypeReceipt && !hasID && !hasState && !isText {
		return otp.Receipt{}, "", ErrNotReceipt
	}
	word := firstToken(fields[fieldStat])
	state, known := stateFromStat(word)
	if !known {
		stat = word
	}
	r = otp.Receipt{
		MessageID: firstToken(fields[fieldID]),
		State:     state,
		Error:     firstToken(fields[fieldErr]),
		DoneAt:    now.UTC(),
	}
	if b, ok := tlvs[uint16(tagReceiptedMessageID)]; ok {
		if id := strings.TrimSpace(strings.TrimRight(string(b), "\x00")); id != "" {
			r.MessageID = id
		}
	}
	if b := tlvs[uint16(tagMessageState)]; len(b) == 1 {
		if st := stateFromTLV(b[0]); st != "" {
			r.State, stat = st, ""
		}
	}
	if r.Error == "" {
		if b := tlvs[uint16(tagNetworkErrorCode)]; len(b) == 3 {
			r.Error = fmt.Sprintf("%03d", int(b[1])<<8|int(b[2]))
		}
	}
	if t, ok := parseReceiptDate(fields[fieldDoneDate], loc); ok {
		switch {
		case t.After(now):
			t = now.UTC()
		case len(firstToken(fields[fieldDoneDate])) == 10 && now.Sub(t) < time.Minute:
			// A date to the minute says "some time in that minute": when
			// that minute is the current one, the receipt's arrival is the
			// closer reading (and is never before the submit).
			t = now.UTC()
		}
		r.DoneAt = t
	}
	switch {
	case r.MessageID == "":
		return otp.Receipt{}, "", errors.New("smpp: receipt: no message id")
	case r.State == "":
		return otp.Receipt{}, "", errors.New("smpp: receipt: no state")
	}
	return r, stat, nil
}

// startsWithID reports whether b, after leading white space, starts with
// the receipt text's first key "id:" (any case).
func startsWithID(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) >= 3 && (b[0]|0x20) == 'i' && (b[1]|0x20) == 'd' && b[2] == ':'
}

// receiptFields splits a receipt text into its key:value fields, by field
// (receiptKeys). A key (any case) counts only at the start or after
// white space; the first occurrence of a key wins (a "text:" field quoting
// the message cannot override the real fields before it), and a value runs
// to the next key. The values are substrings of s: nothing is allocated.
func receiptFields(s string) (out receiptText) {
	var seen [numFields]bool
	open, from := -1, 0 // the field whose value runs from s[from:], if any
	for i := 0; i < len(s); i++ {
		if i > 0 && !isSpace(s[i-1]) {
			continue
		}
		for k, key := range receiptKeys {
			if len(s) > i+len(key) && s[i+len(key)] == ':' && hasPrefixFold(s[i:], key) {
				if open >= 0 {
					out[open] = strings.TrimSpace(s[from:i])
				}
				open = -1
				if !seen[k] {
					seen[k] = true
					open, from = k, i+len(key)+1
				}
				break
			}
		}
	}
	if open >= 0 {
		out[open] = strings.TrimSpace(s[from:])
	}
	return out
}

// hasPrefixFold reports whether s starts with key, a lower-case ASCII
// word, with s's letters A-Z taken as lower case.
func hasPrefixFold(s, key string) bool {
	if len(s) < len(key) {
		return false
	}
	for j := 0; j < len(key); j++ {
		c := s[j]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != key[j] {
			return false
		}
	}
	return true
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

// stateFromStat maps a receipt's stat: value. Only DELIVRD, UNDELIV,
// EXPIRED, REJECTD, DELETED and UNKNOWN (and their spelled-out forms) are
// final; ENROUTE, ACCEPTD, BUFFRED/BUFFERD and ACKED say the message is on
// its way and keep it ACCEPTED. A word it does not know is taken as
// intermediate too (known false): a final state can never be replaced, so
// reading an unknown word as final would lock the message in a state the
// carrier may not have meant, and hide the DELIVRD that follows it; taken as
// intermediate, the next known word still decides. An empty word is "".
func stateFromStat(s string) (st otp.State, known bool) {
	switch strings.ToUpper(s) {
	case "":
		return "", true
	case "DELIVRD", "DELIVERED":
		return otp.StateDelivered, true
	case "UNDELIV", "UNDELIVERABLE":
		return otp.StateUndeliverable, true
	case "EXPIRED":
		return otp.StateExpired, true
	case "REJECTD", "REJECTED":
		return otp.StateRejected, true
	case "DELETED":
		return otp.StateDeleted, true
	case "UNKNOWN":
		return otp.StateUnknown, true
	case "ACCEPTD", "ACCEPTED", "ENROUTE", "BUFFRED", "BUFFERD", "BUFFERED", "ACKED":
		return otp.StateAccepted, true
	default:
		return otp.StateAccepted, false
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

// parseReceiptDate parses YYMMDDhhmm or YYMMDDhhmmss in loc and returns
// it in UTC.
func parseReceiptDate(v string, loc *time.Location) (time.Time, bool) {
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
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
