package otp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestNewRequestID: ids are 24 hex digits that sort as their sends' times
// do, with 7 random bytes after the time.
func TestNewRequestID(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0.Add(time.Millisecond), t0.Add(time.Second), t0.Add(72 * time.Hour), t0.Add(20 * 365 * 24 * time.Hour)}
	var prev string
	for i, at := range times {
		id, err := newRequestID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 7)), at)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 24 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("id %q: want 24 lower-case hex digits", id)
		}
		if !strings.HasSuffix(id, "ffffffffffffff") {
			t.Fatalf("id %q: want the random bytes last", id)
		}
		if i > 0 && id <= prev {
			t.Fatalf("id at %v is %q, not after %q", at, id, prev)
		}
		prev = id
	}
	// 2026-12-01T21:00Z is 60,469,200,000 ms (0xe143ec480) after 2025-01-01.
	if id, _ := newRequestID(bytes.NewReader(make([]byte, 7)), t0); id != "0e143ec480"+"00000000000000" {
		t.Fatalf("id = %q", id)
	}
	seen := make(map[string]bool)
	for range 10000 {
		id, err := newRequestID(rand.Reader, t0)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("id %q made twice in one millisecond", id)
		}
		seen[id] = true
	}
	boom := errors.New("boom")
	if _, err := newRequestID(iotest.ErrReader(boom), t0); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
