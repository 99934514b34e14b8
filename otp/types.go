package otp

import "time"

// Record is the state kept per client and phone number: the live code's
// HMAC, the wrong-guess count (which a resend does not reset) and the send
// history that resend_interval and max_per_number_per_hour look at.
type Record struct {
	Key        string      `json:"-"`            // RecordKey(clientID, e164)
	CodeHash   []byte      `json:"h,omitempty"`  // HMAC-SHA256 of the code; nil once used
	ExpiresAt  time.Time   `json:"e,omitzero"`   // end of the code's validity
	RequestID  string      `json:"r,omitempty"`  // request that sent the live code
	Attempts   int         `json:"a,omitempty"`  // wrong guesses since the last success
	LastFailAt time.Time   `json:"f,omitzero"`   // time of the last wrong guess
	Sends      []time.Time `json:"s,omitempty"`  // sends within the last hour, oldest first
	DayFails   int         `json:"df,omitempty"` // wrong guesses since DayStart (max_failures_per_day)
	DayStart   time.Time   `json:"ds,omitzero"`  // first wrong guess of the current 24-hour window
	Carrier    string      `json:"cr,omitempty"` // carrier that took the live code's SMS ("" if unknown): the guard's per-carrier conversion
	KeepUntil  time.Time   `json:"k"`            // the store may drop the record after this
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
	// Earlier holds the attempts before the current one (Carrier, Parts,
	// SubmittedAt) when a failed delivery was retried through another
	// carrier, oldest first.
	Earlier []Attempt `json:"ea,omitempty"`
}

// Attempt is one carrier's try at delivering a message.
type Attempt struct {
	Carrier     string    `json:"cr"`
	Parts       []Part    `json:"p"`
	SubmittedAt time.Time `json:"t"`
}

// AttemptSummary is an attempt as the status API and callbacks show it.
type AttemptSummary struct {
	Carrier     string
	State       State
	Error       string
	SubmittedAt time.Time
	DoneAt      time.Time // zero while not final
}

// Attempts summarises every attempt of m, the current one last; nil when
// m was never retried.
func (m Message) Attempts() []AttemptSummary {
	if len(m.Earlier) == 0 {
		return nil
	}
	out := make([]AttemptSummary, 0, len(m.Earlier)+1)
	for _, a := range append(append([]Attempt(nil), m.Earlier...), Attempt{Carrier: m.Carrier, Parts: m.Parts, SubmittedAt: m.SubmittedAt}) {
		st, code, done := Message{Parts: a.Parts}.Summary()
		out = append(out, AttemptSummary{Carrier: a.Carrier, State: st, Error: code, SubmittedAt: a.SubmittedAt, DoneAt: done})
	}
	return out
}

// Failed reports whether s says the message will never reach the handset
// through this carrier, so that another carrier may be worth a try.
func (s State) Failed() bool {
	return s == StateUndeliverable || s == StateExpired || s == StateRejected
}

// Part is one SMS segment of a message, with its carrier message id and the
// state its receipt reported.
type Part struct {
	MessageID string    `json:"m"`
	State     State     `json:"s"`
	Error     string    `json:"e,omitempty"` // err: field of the receipt, "000" when fine
	DoneAt    time.Time `json:"t,omitzero"`
}

// Apply records r on p unless p already has a final state (a final state
// is never replaced) or r's state, and reports whether p changed. Both
// stores apply receipts through it.
func (p *Part) Apply(r Receipt) bool {
	if p.State.Final() || p.State == r.State {
		return false
	}
	p.State = r.State
	p.Error = r.Error
	p.DoneAt = r.DoneAt
	return true
}

// State is a message's delivery state.
type State string

// Delivery states, as the status API and callbacks show them (README.md,
// "HTTP API"; api/openapi.yaml).
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
	// Exact says that this process's sessions of Carrier returned this very
	// id (same canonical form) to a submit moments ago, and that the
	// carrier writes receipts in its submits' base, so the message it
	// belongs to is being saved, or was: the store matches it only under
	// its exact form and keeps it pending for that message's SaveSend,
	// never guessing through an alternate form (which would give it to an
	// older message whose id is spelled the same in the other base), and
	// a message's SaveSend takes it only under its exact form too. False
	// tells nothing: a receipt that came before its submit's response, or
	// reached another node of a fleet, is matched the usual way.
	Exact bool
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
	// Avoid names carriers not to use (a retry avoids the one that failed).
	Avoid []string
	// Weight is the client's share of a carrier's TPS against the other
	// clients waiting for it (clients[].weight; 1 when not set).
	Weight float64
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

// Ack is a carrier's acknowledgement of part Part (0-based) of Parts of
// the SMS of RequestID, under the carrier's MessageID.
type Ack struct {
	RequestID, Carrier, MessageID string
	Part, Parts                   int
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
