package otp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// codeHMAC is the code hash as the releases before codeHasher made it:
// HMAC-SHA256(secret, key || 0 || code) from a new HMAC. Stored hashes were
// made so.
func codeHMAC(secret []byte, key, code string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// TestCodeHasher: the pooled HMACs give the hash written out, call after
// call and from goroutines at once; a used one is reset, and its buffer no
// longer holds the code.
func TestCodeHasher(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	h := newCodeHasher(secret)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key, code := fmt.Sprintf("client\x00+1415555%04d", i), fmt.Sprintf("%06d", g*1000+i)
				if got, want := h.hash(key, code), codeHMAC(secret, key, code); !bytes.Equal(got, want) {
					t.Errorf("hash(%q, %q) = %x, want %x", key, code, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	want := codeHMAC(bytes.Repeat([]byte{7}, 32), "k", "123456")
	clear(secret) // the caller's slice changes: the hasher kept its own copy
	if got := h.macs.New().(*codeMAC).sum("k", "123456"); !bytes.Equal(got, want) {
		t.Errorf("a new HMAC after the caller's secret changed: %x, want %x", got, want)
	}

	m := h.macs.New().(*codeMAC)
	m.sum("client\x00+14155550123", "918273")
	if bytes.Contains(m.buf[:cap(m.buf)], []byte("918273")) {
		t.Errorf("the code is still in the buffer: %q", m.buf[:cap(m.buf)])
	}
	empty := hmac.New(sha256.New, bytes.Repeat([]byte{7}, 32))
	if !bytes.Equal(m.h.Sum(nil), empty.Sum(nil)) {
		t.Error("the HMAC was not reset after its sum")
	}
	if m.sum("k", strings.Repeat("9", 1000)); m.buf != nil {
		t.Errorf("a buffer of %d bytes kept for the pool", cap(m.buf))
	}
}

// BenchmarkCodeHasher: a code hash with a pooled HMAC and with a new one.
func BenchmarkCodeHasher(b *testing.B) {
	secret := bytes.Repeat([]byte{7}, 32)
	h := newCodeHasher(secret)
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.hash("demo\x00+14155550123", "123456")
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			codeHMAC(secret, "demo\x00+14155550123", "123456")
		}
	})
}
