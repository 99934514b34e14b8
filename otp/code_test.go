package otp_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
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
	t.Run("ErrShortRandom", func(t *testing.T) {
		if _, err := otp.NewCode(bytes.NewReader([]byte{255, 255}), 6); err == nil {
			t.Fatal("got nil error from an exhausted reader")
		}
	})
	t.Run("Redacted", func(t *testing.T) {
		c := otp.Code("123456")
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "code", c)
		if s := buf.String() + fmt.Sprint(c) + fmt.Sprintf("%v %s", c, c); strings.Contains(s, "123456") {
			t.Fatalf("code leaked: %s", s)
		}
	})
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
