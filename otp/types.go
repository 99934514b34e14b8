package otp

import "time"

// Record is the state kept per client and phone number: the live code's
// HMAC, the wrong-guess count (which a resend does not reset) and the send
// history that resend_interval and max_per_number_per_hour look at.
type Record struct {
	Key        string      `json:"-"`           // RecordKey(clientID, e164)
	CodeHash   []byte      `json:"h,omitempty"` // HMAC-SHA256 of the code; nil once used
	ExpiresAt  time.Time   `json:"e,omitzero"`  // end of the code's validity
	RequestID  string      `json:"r,omitempty"` // request that sent the live code
	Attempts   int         `json:"a,omitempty"` // wrong guesses since the last success
	LastFailAt time.Time   `json:"f,omitzero"`  // time of the last wrong guess
	Sends      []time.Time `json:"s,omitempty"` // sends within the last hour, oldest first
	KeepUntil  time.Time   `json:"k"`           // the store may drop the record after this
}

// Message is one send-otp request as handed to a carrier.
type Message struct {
	RequestID   string    `json:"id"`
	ClientID    string    `json:"c"`
	Number      string    `json:"n"` // E.164 digits without '+'
	Display     string    `json:"d"` // masked "+91-98******10"
	Carrier     string    `json:"cr"`
	Parts       []Part    `json:"p"`
	SubmittedAt time.Time `json:"t"`
	Verified    bool      `json:"v,omitempty"`
}

// Part is one SMS segment of a message, with its carrier message id and the
// state its receipt reported.
type Part struct {
	MessageID string    `json:"m"`
	State     State     `json:"s"`
	Error     string    `json:"e,omitempty"` // err: field of the receipt, "000" when fine
	DoneAt    time.Time `json:"t,omitzero"`
}

// State is a message's delivery state.
type State string

// Delivery states of DESIGN.md.
const (
	StateAccepted      State = "ACCEPTED"
	StateDelivered     State = "DELIVERED"
	StateUndeliverable State = "UNDELIVERABLE"
	StateExpired       State = "EXPIRED"
	StateRejected      State = "REJECTED"
	StateDeleted       State = "DELETED"
	StateUnknown       State = "UNKNOWN"
)

// Final reports whether no later receipt can change s.
func (s State) Final() bool { return s != StateAccepted && s != "" }

// Receipt is a delivery receipt as a carrier reported it.
type Receipt struct {
	Carrier   string
	MessageID string // as the carrier wrote it; see IDForms
	State     State
	Error     string
	DoneAt    time.Time
}

// SMS is a text to send to one number.
type SMS struct {
	RequestID   string
	ClientID    string
	Source      string // sender id: alphanumeric or digits
	To          string // E.164 digits without '+'
	MaskedTo    string // To as logs show it, "+91-98******10"
	Country     string // ISO 3166 alpha-2 of the number, upper case
	CountryCode string // country calling code digits of To, e.g. "91"; To without it is the national number
	Text        string // full text, code included: never log it
	Masked      string // Text with the code replaced by '*'
	// Expires is when the code stops being accepted: a carrier should not
	// deliver the SMS after it. Zero means no limit.
	Expires time.Time
	// TLVs are optional parameters to put on every submit of this SMS (the
	// client's, overridden tag by tag by its text's).
	TLVs []TLV
}

// TLV is an optional parameter of an SMS submit (an SMPP TLV): a tag and
// the bytes of its value, without the length. The domain carries them
// (e.g. India's DLT entity and template ids) without knowing the protocol.
type TLV struct {
	Tag   uint16
	Value []byte
}

// MergeTLVs returns base with over applied on top: a tag present in both
// takes over's value. Tags keep base's order, then over's new tags in
// their order. Neither input is changed, but when one is empty the other
// is returned as is: treat the result as read-only.
func MergeTLVs(base, over []TLV) []TLV {
	if len(over) == 0 {
		return base
	}
	if len(base) == 0 {
		return over
	}
	out := make([]TLV, 0, len(base)+len(over))
	out = append(out, base...)
	for _, o := range over {
		replaced := false
		for i := range out {
			if out[i].Tag == o.Tag {
				out[i] = o
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// Sent is what a carrier acknowledged for an SMS.
type Sent struct {
	Carrier    string
	MessageIDs []string // one per part, as submit_sm_resp gave them
}

// RecordKey is the Store key of the record of clientID and number (E.164 digits).
func RecordKey(clientID, e164 string) string { return clientID + "/" + e164 }

// Summary folds the parts' states into the message's: the first part that
// failed decides; otherwise DELIVERED once every part is, else ACCEPTED.
// errCode is that part's error; doneAt the latest receipt time once final.
func (m Message) Summary() (state State, errCode string, doneAt time.Time) {
	if len(m.Parts) == 0 {
		return StateAccepted, "", time.Time{}
	}
	state = StateDelivered
	for _, p := range m.Parts {
		if p.DoneAt.After(doneAt) {
			doneAt = p.DoneAt
		}
		switch p.State {
		case StateDelivered:
		case StateAccepted, "":
			if state == StateDelivered {
				state, errCode = StateAccepted, ""
			}
		default:
			return p.State, p.Error, p.DoneAt
		}
		if state == StateDelivered && errCode == "" {
			errCode = p.Error
		}
	}
	if state == StateAccepted {
		return state, "", time.Time{}
	}
	return state, errCode, doneAt
}
