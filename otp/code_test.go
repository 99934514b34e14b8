package otp_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/otp"
)

func TestNewCode(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for n := 1; n <= 8; n++ {
			c, err := otp.NewCode(rand.Reader, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(c.Reveal()); got != n {
				t.Fatalf("got length %d, want %d", got, n)
			}
			if strings.Trim(c.Reveal(), "0123456789") != "" {
				t.Fatalf("got %q, want digits only", c.Reveal())
			}
		}
	})
	t.Run("NoModuloBias", func(t *testing.T) {
		// Bytes 250..255 would favour digits 0..5; they must be skipped.
		src := bytes.NewReader(append([]byte{250, 251, 252, 253, 254, 255, 249, 9, 10, 0}, make([]byte, 64)...))
		c, err := otp.NewCode(src, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Reveal(), "9900"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("ShortRandom", func(t *testing.T) {
		if _, err := otp.NewCode(bytes.NewReader([]byte{255, 255}), 6); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("exhausted reader: got %v, want io.ErrUnexpectedEOF", err)
		}
	})
}

// TestCode_Redacted: no way of printing a Code, alone or in a struct,
// shows its digits (in decimal or in hex).
func TestCode_Redacted(t *testing.T) {
	const digits = "123456"
	c := otp.Code(digits)
	type holder struct {
		Number string
		Code   otp.Code
	}
	h := holder{Number: "+91-98******10", Code: c}
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		outs["Sprintf "+verb] = fmt.Sprintf(verb, c)
		outs["Sprintf "+verb+" pointer"] = fmt.Sprintf(verb, &c)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outs["Sprintf "+verb+" struct"] = fmt.Sprintf(verb, h)
		outs["Sprintf "+verb+" struct pointer"] = fmt.Sprintf(verb, &h)
	}
	outs["Sprint"] = fmt.Sprint(c, h)
	outs["Sprintln"] = fmt.Sprintln(c, h)
	outs["Errorf"] = fmt.Errorf("send %v: %w", c, errors.New("x")).Error()
	outs["GoString"] = c.GoString()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs["json.Marshal struct"] = string(b)
	if b, err = json.Marshal(map[string]any{"code": c}); err != nil {
		t.Fatal(err)
	}
	outs["json.Marshal map"] = string(b)
	for name, newHandler := range map[string]func(io.Writer) slog.Handler{
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("sent", "code", c)
		log.Info("sent", "holder", h)
		log.Info("sent", "holder", &h)
		log.Info("sent", slog.Any("code", c), slog.Group("g", "code", c))
		log.With("code", c).Info("sent")
		outs["slog "+name] = buf.String()
	}
	hexDigits := hex.EncodeToString([]byte(digits))
	for name, out := range outs {
		if strings.Contains(out, digits) || strings.Contains(strings.ToLower(out), hexDigits) {
			t.Errorf("%s: code leaked: %s", name, out)
		}
		if !strings.Contains(out, "REDACTED") && !strings.Contains(strings.ToLower(out), hex.EncodeToString([]byte("[REDACTED]"))) {
			t.Errorf("%s: got %q, want the code shown as [REDACTED]", name, out)
		}
	}
	if c.Reveal() != digits {
		t.Fatalf("Reveal: got %q, want %q", c.Reveal(), digits)
	}
}

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		text   string
		length int
		ok     bool
	}{
		{"Your OTP for verification is ####", 4, true},
		{"######## is your code", 8, true},
		{"Signzy: Your OTP is ###### valid 5m", 6, true},
		{"no hash here", 0, false},
		{"#########", 0, false},
		{"## and ##", 0, false},
	} {
		tpl, err := otp.ParseTemplate(tc.text)
		if (err == nil) != tc.ok {
			t.Fatalf("%q: got err %v, want ok=%v", tc.text, err, tc.ok)
		}
		if !tc.ok {
			continue
		}
		if tpl.Length() != tc.length {
			t.Fatalf("%q: got length %d, want %d", tc.text, tpl.Length(), tc.length)
		}
		code := otp.Code(strings.Repeat("7", tc.length))
		if got, want := tpl.Render(code), strings.Replace(tc.text, strings.Repeat("#", tc.length), code.Reveal(), 1); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if strings.Contains(tpl.Masked(), "7") || strings.Count(tpl.Masked(), "*") != tc.length {
			t.Fatalf("masked %q", tpl.Masked())
		}
	}
	for n := 4; n <= 8; n++ {
		tpl, ok := otp.DefaultTemplates[fmt.Sprint(n)]
		if !ok || tpl.Length() != n {
			t.Fatalf("default template %d missing or wrong", n)
		}
		if got, want := tpl.Masked(), "Your OTP for verification is "+strings.Repeat("*", n); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestIDForms(t *testing.T) {
	for _, tc := range []struct {
		in    string
		canon string
		alts  []string
	}{
		{"000000001A", "1A", []string{"26"}},
		{"1a", "1A", []string{"26"}},
		{"26", "26", []string{"1A", "38"}},
		{"0000000026", "26", []string{"1A", "38"}},
		{"9", "9", nil},
		{"0000", "0", nil},
		{"", "", nil},
		{"abc-123", "ABC-123", nil},
	} {
		c, alts := otp.IDForms(tc.in)
		if c != tc.canon || fmt.Sprint(alts) != fmt.Sprint(tc.alts) {
			t.Fatalf("IDForms(%q) = %q %v, want %q %v", tc.in, c, alts, tc.canon, tc.alts)
		}
	}
}

func TestMessageSummary(t *testing.T) {
	m := otp.Message{Parts: []otp.Part{{State: otp.StateDelivered, Error: "000"}, {State: otp.StateAccepted}}}
	if s, _, _ := m.Summary(); s != otp.StateAccepted {
		t.Fatalf("got %s, want ACCEPTED while a part is pending", s)
	}
	m.Parts[1].State, m.Parts[1].Error = otp.StateDelivered, "000"
	if s, e, _ := m.Summary(); s != otp.StateDelivered || e != "000" {
		t.Fatalf("got %s %s, want DELIVERED 000", s, e)
	}
	m.Parts[0].State, m.Parts[0].Error = otp.StateUndeliverable, "001"
	if s, e, _ := m.Summary(); s != otp.StateUndeliverable || e != "001" {
		t.Fatalf("got %s %s, want UNDELIVERABLE 001", s, e)
	}
}
