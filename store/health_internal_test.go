package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// poll waits until cond holds, failing the test after 10 s.
func poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within 10s", what)
		}
	}
}

// keyExists reports whether key is in db.
func keyExists(tb testing.TB, db *DB, key string) bool {
	tb.Helper()
	var found bool
	err := db.view(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return found
}

func setKey(key string, ran *atomic.Bool) func(*badger.Txn) error {
	return func(txn *badger.Txn) error {
		if ran != nil {
			ran.Store(true)
		}
		return txn.Set([]byte(key), []byte("v"))
	}
}

func openTest(tb testing.TB, opts Options) *DB {
	tb.Helper()
	db, err := Open(tb.TempDir(), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestWrite_ContextEndsWhileQueued: a write whose context ends while it
// waits behind a held batch returns at once with the context's error, and
// is never run.
func TestWrite_ContextEndsWhileQueued(t *testing.T) {
	db := openTest(t, Options{})
	release := holdWriter(t, db)

	for i, tc := range []struct {
		name    string
		timeout time.Duration // 0: the test cancels the context
		want    error
	}{
		{"Canceled", 0, context.Canceled},
		{"Deadline", 50 * time.Millisecond, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tc.timeout)
			}
			defer cancel()
			var ran atomic.Bool
			errc := make(chan error, 1)
			// The ops of earlier cases are still queued behind the held batch.
			queued(t, db, i+1, func() { errc <- db.update(ctx, setKey("q/"+tc.name, &ran)) })
			if tc.timeout == 0 {
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, tc.want) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("got %v, want %v wrapped with ErrUnavailable", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("write still waiting 10s after its context ended")
			}
			if ran.Load() {
				t.Fatal("the abandoned write ran while the writer was held")
			}
		})
	}
	t.Run("EndedBeforeQueued", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := db.update(ctx, setKey("q/before", nil)); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v, want context.Canceled wrapped with ErrUnavailable", err)
		}
	})

	release()
	// A write after them commits; the abandoned ones, queued before it,
	// were skipped.
	if err := db.update(context.Background(), setKey("q/after", nil)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"q/Canceled", "q/Deadline", "q/before"} {
		if keyExists(t, db, k) {
			t.Errorf("%s: written, want the abandoned write never run", k)
		}
	}
	if !keyExists(t, db, "q/after") {
		t.Error("q/after: not written")
	}
}

// TestWrite_ContextEndsWhileTaken: once the writer has taken a write, its
// context ending changes nothing: the caller gets the outcome of the whole
// write, whether it commits or its commit fails.
func TestWrite_ContextEndsWhileTaken(t *testing.T) {
	db := openTest(t, Options{})
	for _, tc := range []struct {
		name   string
		refuse bool // the commit is refused (free space below the reserve)
	}{{"Commits", false}, {"Fails", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			running, unblock := make(chan struct{}), make(chan struct{})
			errc := make(chan error, 1)
			key := "t/" + tc.name
			go func() {
				errc <- db.update(ctx, func(txn *badger.Txn) error {
					close(running)
					<-unblock
					return txn.Set([]byte(key), []byte("v"))
				})
			}()
			<-running
			cancel()
			select {
			case err := <-errc:
				t.Fatalf("returned %v while its write was running", err)
			case <-time.After(50 * time.Millisecond):
			}
			if tc.refuse {
				db.space.extra.Store(1 << 62)
			}
			close(unblock)
			err := <-errc
			db.space.extra.Store(0)
			switch {
			case tc.refuse && !errors.Is(err, ErrNoSpace):
				t.Fatalf("got %v, want ErrNoSpace", err)
			case !tc.refuse && err != nil:
				t.Fatalf("got %v, want nil: the write was taken before its context ended", err)
			}
			if got := keyExists(t, db, key); got == tc.refuse {
				t.Fatalf("%s on disk: %v, want %v", key, got, !tc.refuse)
			}
		})
	}
}

// TestHealth_Wedged: a writer stuck in a batch makes Health an error and
// Live false within the stall timeout, and both recover once it moves.
func TestHealth_Wedged(t *testing.T) {
	db := openTest(t, Options{HeartbeatInterval: 20 * time.Millisecond, StallTimeout: 200 * time.Millisecond})
	poll(t, "healthy after open", db.Healthy)
	if !db.Live() {
		t.Fatal("Live: false on a fresh store")
	}
	release := holdWriter(t, db)
	poll(t, "unhealthy while the writer is held", func() bool { return !db.Healthy() })
	poll(t, "not live while the writer is held", func() bool { return !db.Live() })
	if err := db.Health(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "commit has been running") {
		t.Fatalf("Health: got %v, want a running commit", err)
	}
	release()
	poll(t, "healthy after release", db.Healthy)
	if !db.Live() {
		t.Fatal("Live: false after release")
	}
}

// TestHealth_FailedWrite: a write refused for want of space makes Health
// an error until a write succeeds again, which the heartbeat does alone;
// the store stays Live (a restart frees no space).
func TestHealth_FailedWrite(t *testing.T) {
	db := openTest(t, Options{HeartbeatInterval: 20 * time.Millisecond, StallTimeout: 200 * time.Millisecond})
	poll(t, "healthy after open", db.Healthy)
	db.space.extra.Store(1 << 62)
	err := db.update(context.Background(), setKey("f/1", nil))
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write: got %v, want ErrNoSpace and ErrUnavailable", err)
	}
	if err := db.Health(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Health: got %v, want ErrNoSpace", err)
	}
	// Failing heartbeats keep the writer busy, not wedged: still live, and
	// unhealthy for as long as the space is missing.
	time.Sleep(400 * time.Millisecond)
	if !db.Live() {
		t.Fatal("Live: false on a full disk, want true")
	}
	if db.Healthy() {
		t.Fatal("Healthy while writes are refused")
	}
	db.space.extra.Store(0)
	poll(t, "healthy again by the heartbeat", db.Healthy)
	if err := db.update(context.Background(), setKey("f/2", nil)); err != nil {
		t.Fatal(err)
	}
	if keyExists(t, db, "f/1") {
		t.Error("the refused write is on disk")
	}
}

// TestHealth_LiveRules checks the watchdog's view on the health record
// itself (a badger that fails its commits for another reason than space
// cannot be provoked from outside): failures for want of space keep the
// store live, others only until the stall timeout.
func TestHealth_LiveRules(t *testing.T) {
	t0 := time.Now()
	const stall = time.Second
	noSpace := fmt.Errorf("%w: %w: full", ErrUnavailable, ErrNoSpace)
	ioErr := fmt.Errorf("%w: commit: %w", ErrUnavailable, errors.New("input/output error"))
	for _, tc := range []struct {
		name string
		set  func(h *health)
		at   time.Duration // after t0
		want bool
	}{
		{"Fresh", func(*health) {}, 0, true},
		{"IdleTooLong", func(*health) {}, 2 * stall, false},
		{"BatchRunning", func(h *health) { h.begin(t0) }, stall / 2, true},
		{"BatchStuck", func(h *health) { h.begin(t0) }, 2 * stall, false},
		{"NoSpaceLong", func(h *health) {
			h.committed(t0.Add(stall), noSpace)
			h.end(t0.Add(stall))
		}, stall + stall/2, true},
		{"IOErrorShort", func(h *health) {
			h.committed(t0.Add(stall/2), ioErr)
			h.end(t0.Add(stall / 2))
		}, stall, true},
		{"IOErrorLong", func(h *health) {
			h.committed(t0.Add(stall), ioErr)
			h.end(t0.Add(stall))
		}, stall + stall/2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h health
			h.init(stall, slog.New(slog.DiscardHandler), t0)
			tc.set(&h)
			if got := h.live(t0.Add(tc.at)); got != tc.want {
				t.Fatalf("live: got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHealth_Heartbeat: an idle store commits its heartbeat record, and
// Health stays nil long past the stall timeout without any traffic.
func TestHealth_Heartbeat(t *testing.T) {
	db := openTest(t, Options{HeartbeatInterval: 20 * time.Millisecond, StallTimeout: 100 * time.Millisecond})
	read := func() string {
		var v string
		err := db.view(func(txn *badger.Txn) error {
			item, err := txn.Get([]byte(heartbeatKey))
			if err != nil {
				return err
			}
			b, err := item.ValueCopy(nil)
			v = string(b)
			return err
		})
		if err != nil {
			t.Fatalf("heartbeat record: %v", err)
		}
		return v
	}
	poll(t, "first heartbeat", func() bool { return keyExists(t, db, heartbeatKey) })
	first := read()
	poll(t, "a later heartbeat", func() bool { return read() != first })
	for range 10 {
		if err := db.Health(); err != nil {
			t.Fatalf("idle store: Health %v", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// allocated reports whether every byte of the file at path has a block.
func allocated(tb testing.TB, path string) bool {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks*512 >= fi.Size()
}

// newestWAL returns the path of the newest .mem file in dir.
func newestWAL(tb testing.TB, dir string) string {
	tb.Helper()
	mems, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil || len(mems) == 0 {
		tb.Fatalf("no .mem file in %s (%v)", dir, err)
	}
	return mems[len(mems)-1] // zero-padded names sort by id
}

// TestSpace_WALAllocated: the WAL that badger opens sparse is allocated at
// Open, and so is the next one after the memtable fills.
func TestSpace_WALAllocated(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first := newestWAL(t, dir)
	if !allocated(t, first) {
		t.Fatalf("%s: sparse after Open, want allocated", first)
	}
	big := strings.Repeat("x", 512<<10)
	for i := 0; newestWAL(t, dir) == first; i++ {
		if i > 200 {
			t.Fatal("no new memtable after 100 MB of writes")
		}
		k := "w/" + strings.Repeat("0", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := db.update(context.Background(), func(txn *badger.Txn) error { return txn.Set([]byte(k), []byte(big)) }); err != nil {
			t.Fatal(err)
		}
	}
	// The next commit allocates the WAL that the last one created.
	if err := db.update(context.Background(), setKey("w/next", nil)); err != nil {
		t.Fatal(err)
	}
	if next := newestWAL(t, dir); !allocated(t, next) {
		t.Fatalf("%s: sparse after the next commit, want allocated", next)
	}
}
