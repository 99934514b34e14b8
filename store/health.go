package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Health.
//
// The writer records when each batch starts and ends and the outcome of
// each commit; when it has been idle for a heartbeat interval it commits a
// heartbeat record, so that a store that can no longer commit is noticed
// without traffic. Two views are read from that:
//
//   - Health (for /readyz): nil while the last commit succeeded and one did
//     within the stall timeout. A failed commit (a full disk, a badger
//     error) makes it an error until a commit succeeds again, at the
//     latest at the next heartbeat.
//   - Live (for the systemd watchdog): false when a restart is the cure:
//     the writer is wedged (a batch running, or none finished, for longer
//     than the stall timeout), or commits have failed for longer than the
//     stall timeout for a reason other than disk space. A full disk keeps
//     the daemon live: a restart frees no space, and the store takes writes
//     again by itself once space is freed.
//
// The times are the monotonic clock of time.Now, not Options.Now (a test
// clock for expiry).

// heartbeatKey holds the time of the last heartbeat; it expires after
// heartbeatTTL, so it costs nothing to keep.
const (
	heartbeatKey = "h/heartbeat"
	heartbeatTTL = time.Minute
)

// health is the writer's record of its commits.
type health struct {
	stall time.Duration
	log   *slog.Logger

	mu        sync.Mutex
	lastOK    time.Time // last successful commit (Open counts as one)
	lastDone  time.Time // last batch finished, whatever its outcome
	busySince time.Time // start of the running batch; zero when idle
	lastErr   error     // of the last commit; nil when it succeeded
}

func (h *health) init(stall time.Duration, log *slog.Logger, now time.Time) {
	h.stall, h.log = stall, log
	h.lastOK, h.lastDone = now, now
}

// begin records that the writer starts a batch.
func (h *health) begin(now time.Time) {
	h.mu.Lock()
	h.busySince = now
	h.mu.Unlock()
}

// end records that the writer finished a batch.
func (h *health) end(now time.Time) {
	h.mu.Lock()
	h.busySince = time.Time{}
	h.lastDone = now
	h.mu.Unlock()
}

// committed records the outcome of a commit (err nil: it is on disk) and
// logs the first failure of a run and the recovery.
func (h *health) committed(now time.Time, err error) {
	h.mu.Lock()
	was := h.lastErr
	h.lastErr = err
	if err == nil {
		h.lastOK = now
	}
	h.mu.Unlock()
	switch {
	case err != nil && was == nil:
		h.log.Error("store writes failing", keyError, err)
	case err == nil && was != nil:
		h.log.Info("store writes succeed again")
	}
}

// idle is how long the writer has been idle (0 while it runs a batch).
func (h *health) idle(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.busySince.IsZero() {
		return 0
	}
	return now.Sub(h.lastDone)
}

// Health returns nil when the store takes writes: its last commit succeeded,
// one succeeded within the stall timeout (Options.StallTimeout), and none
// has been running for longer. Otherwise it returns the reason, wrapping
// ErrUnavailable (and ErrNoSpace when the disk is too full). It does not
// block, and is meant for readiness probes.
func (db *DB) Health() error {
	if db.shut.Load() {
		return ErrClosed
	}
	now := time.Now()
	h := &db.health
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.busySince.IsZero() && now.Sub(h.busySince) > h.stall:
		return fmt.Errorf("%w: a commit has been running for %s", ErrUnavailable, now.Sub(h.busySince).Round(time.Millisecond))
	case h.lastErr != nil:
		return fmt.Errorf("last write failed: %w", h.lastErr)
	case now.Sub(h.lastOK) > h.stall:
		return fmt.Errorf("%w: no commit for %s", ErrUnavailable, now.Sub(h.lastOK).Round(time.Millisecond))
	}
	return nil
}

// Healthy reports whether Health is nil.
func (db *DB) Healthy() bool { return db.Health() == nil }

// Live reports whether the store is open and not wedged: its writer has
// finished a batch within the stall timeout and is not stuck in one, and
// its commits have not failed, for longer than the stall timeout, for a
// reason other than disk space. A false Live is cured by a restart (the
// systemd watchdog); a full disk is not, and leaves Live true while Health
// reports it.
func (db *DB) Live() bool {
	return !db.shut.Load() && db.health.live(time.Now())
}

// live is Live at now for an open store.
func (h *health) live(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.busySince.IsZero():
		return now.Sub(h.busySince) <= h.stall
	case now.Sub(h.lastDone) > h.stall:
		return false
	case h.lastErr != nil && !errors.Is(h.lastErr, ErrNoSpace):
		return now.Sub(h.lastOK) <= h.stall
	}
	return true
}

// heartbeatOp is the write of the heartbeat record. Nobody waits for it:
// its outcome is the health record's.
func heartbeatOp(now time.Time) *writeOp {
	v := []byte(now.UTC().Format(time.RFC3339Nano))
	return &writeOp{done: make(chan error, 1), fn: func(txn *badger.Txn) error {
		return txn.SetEntry(badger.NewEntry([]byte(heartbeatKey), v).WithTTL(heartbeatTTL))
	}}
}
