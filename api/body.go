package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/otpgate/otpgate/otp"
)

// Request bodies are small JSON objects of string members, read on every
// send and verify. encoding/json spends 11 allocations and most of its
// time on reflection for them, so the common shape (the members named
// exactly, their values plain strings) is decoded by hand; anything else
// (an escape, null, another type, an unknown or differently cased name)
// goes to json.Unmarshal, which gives the same fields for what the hand
// decoder takes (FuzzDecodeBody checks that).

// member is a string member of a request body: its JSON name and the
// field that takes its value.
type member struct {
	name string
	dst  **string
}

// maxMembers is the most members a request body type has.
const maxMembers = 4

// bodyMembers appends the members of dst, a request body of string
// members, to m; for any other dst it returns nil. (A type switch rather
// than an interface method, so that m can stay on the caller's stack.)
func bodyMembers(dst any, m []member) []member {
	switch b := dst.(type) {
	case *sendBody:
		return append(m, member{"clientId", &b.ClientID}, member{"phoneNumber", &b.PhoneNumber},
			member{"channel", &b.Channel}, member{"customTextId", &b.CustomTextID})
	case *verifyBody:
		return append(m, member{"clientId", &b.ClientID}, member{"phoneNumber", &b.PhoneNumber}, member{"otp", &b.OTP})
	}
	return nil
}

// bodyBufs holds buffers for request bodies, which decoding copies out of.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledBody is the largest buffer put back in bodyBufs: a rare large
// body's buffer is left to the GC.
const maxPooledBody = 4 << 10

// decode reads at most MaxBodyBytes and decodes one JSON object into dst:
// errBodyTooLarge for a longer body, otp.ErrUnprocessable for one that
// cannot be read or is not such an object (DecodeBody).
func (h *handler) decode(c *gin.Context, dst any) error {
	bp := bodyBufs.Get().(*[]byte)
	body, err := readBody(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes), (*bp)[:0])
	defer putBody(bp, body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errBodyTooLarge
		}
		return otp.ErrUnprocessable
	}
	return DecodeBody(body, dst)
}

// putBody gives body, read into *bp, back to bodyBufs, zeroed (it held a
// number and maybe a code), unless it grew past maxPooledBody, and reports
// whether it did.
func putBody(bp *[]byte, body []byte) bool {
	if cap(body) > maxPooledBody {
		return false
	}
	clear(body)
	*bp = body[:0]
	bodyBufs.Put(bp)
	return true
}

// readBody appends what r reads to buf until io.EOF.
func readBody(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// DecodeBody decodes one JSON object into dst (a pointer to a struct of
// *string fields): otp.ErrUnprocessable for anything else, trailing data
// after the object included. It keeps no reference to body.
func DecodeBody(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return otp.ErrUnprocessable
	}
	var m [maxMembers]member
	if ms := bodyMembers(dst, m[:0]); ms != nil && decodePlain(body, ms) {
		return nil
	}
	// json.Unmarshal refuses trailing data (anything but white space after
	// the object).
	if err := json.Unmarshal(body, dst); err != nil {
		return otp.ErrUnprocessable
	}
	return nil
}

// decodePlain decodes body when it is one JSON object, white space around
// and between its tokens, whose members are each named exactly as one of
// ms and have a string value without escapes. A member given twice takes
// its last value, as in json.Unmarshal. It reports false, having set
// nothing, for any other body.
func decodePlain(body []byte, ms []member) bool {
	var vals [maxMembers][]byte
	var set [maxMembers]bool
	if len(ms) > maxMembers {
		return false
	}
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return skipSpace(body, i+1) == len(body)
	}
	for {
		name, next, ok := plainString(body, i)
		if !ok {
			return false
		}
		k := -1
		for j := range ms {
			if ms[j].name == string(name) {
				k = j
				break
			}
		}
		if k < 0 {
			return false
		}
		i = skipSpace(body, next)
		if i == len(body) || body[i] != ':' {
			return false
		}
		vals[k], next, ok = plainString(body, skipSpace(body, i+1))
		if !ok {
			return false
		}
		set[k] = true
		i = skipSpace(body, next)
		if i == len(body) {
			return false
		}
		if body[i] == '}' {
			if skipSpace(body, i+1) != len(body) {
				return false
			}
			break
		}
		if body[i] != ',' {
			return false
		}
		i = skipSpace(body, i+1)
	}
	// One allocation for the values' bytes, one for the strings.
	n := 0
	for k := range ms {
		n += len(vals[k])
	}
	var all strings.Builder
	all.Grow(n)
	for k := range ms {
		all.Write(vals[k])
	}
	text := all.String()
	strs := new([maxMembers]string)
	at := 0
	for k := range ms {
		if set[k] {
			strs[k] = text[at : at+len(vals[k])]
			*ms[k].dst = &strs[k]
		}
		at += len(vals[k])
	}
	return true
}

// skipSpace returns the index of the first byte at or after i in b that
// is not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the JSON string at b[i] when it has no escapes and no
// control characters and is valid UTF-8 (json.Unmarshal would change
// invalid bytes): its contents and the index after its closing quote.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i == len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s = b[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}
