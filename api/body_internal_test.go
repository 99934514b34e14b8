package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gin-gonic/gin"
	"github.com/otpgate/otpgate/otp"
)

// fields renders a body's members: name=value, or name=nil when absent.
func fields(b any) string {
	var s string
	for _, m := range bodyMembers(b, nil) {
		if *m.dst == nil {
			s += m.name + "=nil "
		} else {
			s += fmt.Sprintf("%s=%q ", m.name, **m.dst)
		}
	}
	return s
}

// decodeSeeds are bodies of the shapes clients send, and near misses.
var decodeSeeds = []string{
	`{"clientId":"demo","phoneNumber":"+14155550123","otp":"123456"}`,
	`{"clientId":"demo","phoneNumber":"+14155550123","channel":"sms","customTextId":"default"}`,
	"{ \"clientId\" : \"demo\" ,\n\t\"otp\":\"1\"\r}",
	`{}`, ` { } `, `{"otp":""}`, `{"otp":"1","otp":"2"}`,
	`{"otp":"caf` + "\u00e9" + `"}`, "{\"otp\":\"\xff\"}", "{\"otp\":\"a\x01\"}",
	`{"otp":"a\"b"}`, `{"otp":"\u0031"}`, `{"o\u0074p":"1"}`, `{"OTP":"1"}`, `{"Otp":"1","otp":"2"}`,
	`{"otp":null}`, `{"otp":"1","otp":null}`, `{"otp":1}`, `{"otp":"1","x":{"y":[1]}}`,
	`{"otp":"1",}`, `{"otp":"1"`, `{"otp" "1"}`, `{"otp":"1"}}`, `{"otp":"1"} x`, `{,}`, `{"otp":"1",,"clientId":"x"}`,
	`{"clientId":"a","phoneNumber":"b","otp":"c","channel":"d"}`,
	`{} x`, `{}}`, `{"otp":"1";"clientId":"x"}`, "{\"otp\":\"a\x1f\"}", "{\"otp\":\"a\x7f\"}",
}

// prefixes returns every proper prefix of s.
func prefixes(s string) []string {
	var out []string
	for i := range len(s) {
		out = append(out, s[:i])
	}
	return out
}

// TestDecodePlain: the hand decoder takes the bodies clients send and
// declines every other shape, leaving those to json.Unmarshal.
func TestDecodePlain(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the fields, or "" when the hand decoder must decline
	}{
		{`{"clientId":"demo","phoneNumber":"+14155550123","otp":"123456"}`, `clientId="demo" phoneNumber="+14155550123" otp="123456" `},
		{"{ \"otp\" :\t\"1\" ,\n\"clientId\":\"\"\r}", `clientId="" phoneNumber=nil otp="1" `},
		{`{}`, `clientId=nil phoneNumber=nil otp=nil `},
		{`{"otp":"1","otp":"2"}`, `clientId=nil phoneNumber=nil otp="2" `},
		{`{"otp":"caf` + "\u00e9" + `"}`, `clientId=nil phoneNumber=nil otp="café" `},
		{`{"otp":"a\"b"}`, ""},
		{`{"OTP":"1"}`, ""},
		{`{"otp":null}`, ""},
		{`{"otp":1}`, ""},
		{`{"otp":"1","x":"y"}`, ""},
		{"{\"otp\":\"\xff\"}", ""},
		{"{\"otp\":\"a\x01\"}", ""},
		{`{"otp":"1",}`, ""},
		{`{"otp":"1"} x`, ""},
		{`{"otp":"1"`, ""},
		{`{"otp":"1";"clientId":"x"}`, ""},
		{`{} x`, ""},
		{"{\"otp\":\"a\x1f\"}", ""},
		{"{\"otp\":\"a\x7f\"}", "clientId=nil phoneNumber=nil otp=\"a\\x7f\" "},
	} {
		var b verifyBody
		ok := decodePlain([]byte(tc.in), bodyMembers(&b, nil))
		if got := fields(&b); ok != (tc.want != "") || ok && got != tc.want {
			t.Errorf("%q: ok %v, %s; want %q", tc.in, ok, got, tc.want)
		}
		if !ok && fields(&b) != `clientId=nil phoneNumber=nil otp=nil ` {
			t.Errorf("%q: declined but set %s", tc.in, fields(&b))
		}
	}
	for _, in := range prefixes(decodeSeeds[0]) {
		var b verifyBody
		if decodePlain([]byte(in), bodyMembers(&b, nil)) {
			t.Errorf("%q: taken, want declined (cut short)", in)
		}
	}
}

// TestBodyMembers: each body type's members are its fields under their
// JSON names.
func TestBodyMembers(t *testing.T) {
	for _, b := range []any{new(sendBody), new(verifyBody)} {
		v := reflect.ValueOf(b).Elem()
		want := map[string]**string{}
		for i := range v.NumField() {
			want[v.Type().Field(i).Tag.Get("json")] = v.Field(i).Addr().Interface().(**string)
		}
		ms := bodyMembers(b, nil)
		if len(ms) != len(want) {
			t.Errorf("%T: %d members, %d fields", b, len(ms), len(want))
		}
		for _, m := range ms {
			if want[m.name] != m.dst {
				t.Errorf("%T: member %q is not the field tagged %q", b, m.name, m.name)
			}
		}
	}
	if ms := bodyMembers(new(struct{ A *string }), nil); ms != nil {
		t.Errorf("another type: %v, want none (json.Unmarshal's)", ms)
	}
}

// TestDecodePlain_Allocs: DecodeBody of a verify body costs three
// allocations (the body, which escapes to DecodeBody; the values' bytes;
// their strings), against json.Unmarshal's eleven.
func TestDecodePlain_Allocs(t *testing.T) {
	body := []byte(decodeSeeds[0])
	n := testing.AllocsPerRun(100, func() {
		var b verifyBody
		if err := DecodeBody(body, &b); err != nil || b.OTP == nil {
			t.Fatal(err)
		}
	})
	if n > 3 {
		t.Fatalf("%v allocations per body, want 3", n)
	}
}

// FuzzDecodeBody: whatever the body, DecodeBody gives the fields and the
// error that json.Unmarshal gives, whether or not the hand decoder took
// it.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	for _, s := range prefixes(decodeSeeds[1]) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, pair := range [][2]any{{new(sendBody), new(sendBody)}, {new(verifyBody), new(verifyBody)}} {
			got, want := pair[0], pair[1]
			gotErr := DecodeBody(body, got)
			wantErr := decodeJSON(body, want)
			if (gotErr == nil) != (wantErr == nil) || fields(got) != fields(want) {
				t.Fatalf("%q: got %v %s; json.Unmarshal %v %s", body, gotErr, fields(got), wantErr, fields(want))
			}
		}
	})
}

// decodeJSON is what DecodeBody did before the hand decoder: the same
// trim and first byte, then json.Unmarshal alone.
func decodeJSON(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return otp.ErrUnprocessable
	}
	return json.Unmarshal(body, dst)
}

// TestDecode_PooledBuffers: bodies are read into reused buffers, and what
// one request decoded stays as it was after later requests reuse its
// buffer, through the hand decoder and through json.Unmarshal alike.
func TestDecode_PooledBuffers(t *testing.T) {
	var h handler
	decode := func(body string) *verifyBody {
		t.Helper()
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("POST", "/", strings.NewReader(body))
		var b verifyBody
		if err := h.decode(c, &b); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return &b
	}
	var kept []*verifyBody
	for i := range 50 {
		code := fmt.Sprintf("%06d", i)
		body := `{"clientId":"c","phoneNumber":"+14155550123","otp":"` + code + `"}`
		if i%2 == 1 {
			body = `{"clientId":"c","phoneNumber":"+14155550123","otp":"` + code + `","other":[1]}` // json.Unmarshal's
		}
		kept = append(kept, decode(body))
	}
	for i, b := range kept {
		if want := fmt.Sprintf("%06d", i); b.OTP == nil || *b.OTP != want || *b.ClientID != "c" || *b.PhoneNumber != "+14155550123" {
			t.Errorf("request %d: %s after later requests, want otp=%q", i, fields(b), want)
		}
	}
}

// TestDecode_LargeBodies: a body longer than the pooled buffers decodes
// whole, and a buffer grown past maxPooledBody is left to the GC.
func TestDecode_LargeBodies(t *testing.T) {
	var h handler
	for _, n := range []int{511, 512, 513, 3000, maxPooledBody, 20000} {
		id := strings.Repeat("x", n)
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("POST", "/", strings.NewReader(`{"clientId":"`+id+`","otp":"1"}`))
		var b verifyBody
		if err := h.decode(c, &b); err != nil || b.ClientID == nil || *b.ClientID != id || *b.OTP != "1" {
			t.Fatalf("a clientId of %d bytes: %v, got %.60s", n, err, fields(&b))
		}
	}
	small, large := make([]byte, 0, maxPooledBody), make([]byte, 0, maxPooledBody+1)
	if !putBody(new([]byte), small) || putBody(new([]byte), large) {
		t.Errorf("putBody kept a buffer of %d or dropped one of %d", cap(large), cap(small))
	}
	held := []byte(`{"phoneNumber":"+14155550123","otp":"918273"}`)
	if putBody(new([]byte), held); strings.Trim(string(held), "\x00") != "" {
		t.Errorf("a pooled buffer still holds %q", held)
	}
}

// TestDecode_ReadError: a body that fails to read (the client's connection
// broke mid-body) is unprocessable, not too large.
func TestDecode_ReadError(t *testing.T) {
	var h handler
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(`{"otp":"1`), iotest.ErrReader(io.ErrUnexpectedEOF)))
	var b verifyBody
	if err := h.decode(c, &b); !errors.Is(err, otp.ErrUnprocessable) || b.OTP != nil {
		t.Fatalf("got %v, %s; want ErrUnprocessable and nothing set", err, fields(&b))
	}
}

// BenchmarkDecode: a verify body read from the request and decoded, as
// every verify-otp is.
func BenchmarkDecode(b *testing.B) {
	var h handler
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("POST", "/", nil)
	body := strings.NewReader(decodeSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		body.Seek(0, io.SeekStart)
		c.Request.Body = io.NopCloser(body)
		var v verifyBody
		if err := h.decode(c, &v); err != nil || v.OTP == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBody: a verify body through the hand decoder and through
// json.Unmarshal alone.
func BenchmarkDecodeBody(b *testing.B) {
	body := []byte(decodeSeeds[0])
	for _, bc := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"plain", DecodeBody}, {"json", decodeJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v verifyBody
				if err := bc.decode(body, &v); err != nil || v.OTP == nil {
					b.Fatal(err)
				}
			}
		})
	}
}
