package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// The wire format of a callback: its JSON body and its signature header.
// The domain (otp.Callback) says what happened; this is how a client's
// endpoint hears of it.

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">" (see Sign).
const SignatureHeader = "X-Otpgate-Signature"

// callbackBody is the JSON the client gets, in the documented key order.
type callbackBody struct {
	RequestID   string            `json:"requestId"`
	ClientID    string            `json:"clientId"`
	PhoneNumber string            `json:"phoneNumber"`
	Carrier     string            `json:"carrier"`
	State       string            `json:"state"`
	Error       string            `json:"error"`
	DoneAt      string            `json:"doneAt"`
	Attempts    []otp.AttemptBody `json:"attempts,omitempty"`
}

// moBody is the JSON of an MO callback, in the documented key order.
type moBody struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Text       string `json:"text"`
	Carrier    string `json:"carrier"`
	ReceivedAt string `json:"receivedAt"`
}

// Body returns the JSON body POSTed to c's client:
// {"requestId","clientId","phoneNumber","carrier","state","error","doneAt"}
// with doneAt in RFC 3339 (UTC) and "attempts" (each carrier's try, the
// current one last) when the message was retried through another carrier;
// or for an MO {"from","to","text","carrier","receivedAt"} with receivedAt
// in RFC 3339 (UTC). The same callback always gives the same bytes.
func Body(c otp.Callback) []byte {
	if c.Kind == otp.CallbackMO {
		b, err := json.Marshal(moBody{From: c.From, To: c.To, Text: c.Text, Carrier: c.Carrier,
			ReceivedAt: c.DoneAt.UTC().Format(time.RFC3339)})
		if err != nil { // strings only: cannot happen
			panic("callback: body: " + err.Error())
		}
		return b
	}
	b, err := json.Marshal(callbackBody{RequestID: c.RequestID, ClientID: c.ClientID, PhoneNumber: c.PhoneNumber,
		Carrier: c.Carrier, State: string(c.State), Error: c.Error, DoneAt: c.DoneAt.UTC().Format(time.RFC3339),
		Attempts: c.History})
	if err != nil { // strings only: cannot happen
		panic("callback: body: " + err.Error())
	}
	return b
}

// Sign returns the SignatureHeader value of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with
// secret>". The time is signed with the body so that a receiver can refuse
// a recorded request played again later (a replay): it checks the MAC,
// then that t is recent. Each try is signed at its own time.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}
