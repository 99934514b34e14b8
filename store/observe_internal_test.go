package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// commitLog records what Options.Committed is told.
type commitLog struct {
	mu       sync.Mutex
	commits  int
	writes   int
	failed   int // writes of failed commits
	negative bool
}

func (c *commitLog) committed(d time.Duration, writes int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commits++
	c.writes += writes
	if err != nil {
		c.failed += writes
	}
	c.negative = c.negative || d < 0
}

func (c *commitLog) get() (commits, writes, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits, c.writes, c.failed
}

// TestCommitted: every commit is reported with its writes; a commit that
// the free-space guard refuses is reported with its error, so that a
// metric counts the failed writes.
func TestCommitted(t *testing.T) {
	var log commitLog
	db := openTest(t, Options{Committed: log.committed, HeartbeatInterval: time.Hour})
	poll(t, "the first heartbeat reported", func() bool { c, _, _ := log.get(); return c >= 1 })
	_, w0, _ := log.get()
	if err := db.update(context.Background(), setKey("k/1", nil)); err != nil {
		t.Fatal(err)
	}
	if _, w, f := log.get(); w != w0+1 || f != 0 {
		t.Fatalf("after a write: got %d writes (%d failed), want %d (0 failed)", w, f, w0+1)
	}
	db.space.extra.Store(1 << 62)
	if err := db.update(context.Background(), setKey("k/2", nil)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write on a full disk: got %v, want ErrNoSpace", err)
	}
	if _, w, f := log.get(); w != w0+2 || f != 1 {
		t.Fatalf("after a refused write: got %d writes (%d failed), want %d (1 failed)", w, f, w0+2)
	}
	if log.negative {
		t.Error("a commit reported a negative duration")
	}
}
