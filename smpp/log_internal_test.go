package smpp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestEveryLimiter(t *testing.T) {
	l := newEveryLimiter(10 * time.Second)
	t0 := time.Unix(1000, 0)
	if ok, _ := l.allow("a", t0); !ok {
		t.Fatal("first line held back")
	}
	for i := 1; i <= 3; i++ {
		if ok, _ := l.allow("a", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d within 10s let through", i)
		}
	}
	if ok, _ := l.allow("b", t0.Add(time.Second)); !ok {
		t.Fatal("another key held back")
	}
	if ok, held := l.allow("a", t0.Add(10*time.Second)); !ok || held != 3 {
		t.Fatalf("after 10s: got %v with %d held, want true with 3", ok, held)
	}
}

func TestWarnLimited(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	lim := newEveryLimiter(time.Hour)
	for i := 0; i < 100; i++ {
		warnLimited(log, lim, slog.LevelWarn, "carrier-a", "bind failed")
	}
	if n := strings.Count(buf.String(), "bind failed"); n != 1 {
		t.Fatalf("got %d lines for 100 repeats, want 1", n)
	}
}
