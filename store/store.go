package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/otpgate/otpgate/otp"
)

var (
	_ otp.Store        = (*DB)(nil)
	_ otp.ReceiptStore = (*DB)(nil)
)

// ErrUnavailable is wrapped by the error of every write that the store could
// not take: the disk is too full (ErrNoSpace), the commit failed, the
// write's context ended while it waited for the writer, or the DB is
// closed. Nothing of such a write is on disk. The API answers it with 503.
var ErrUnavailable = errors.New("store: unavailable")

// ErrNoSpace is wrapped (with ErrUnavailable) by the error of a write refused
// because the data directory's filesystem has less free space than the
// store keeps in reserve (space.go).
var ErrNoSpace = errors.New("not enough free disk space")

// ErrClosed is returned by every method of a DB after Close.
var ErrClosed = fmt.Errorf("%w: closed", ErrUnavailable)

// Default values of Options.
const (
	// DefaultMessageTTL is how long messages live when Options.MessageTTL is 0.
	DefaultMessageTTL = 72 * time.Hour
	// DefaultPendingReceiptTTL is how long an unmatched receipt is kept when
	// Options.PendingReceiptTTL is 0.
	DefaultPendingReceiptTTL = 24 * time.Hour
	// DefaultHeartbeatInterval is how often an idle store commits its
	// heartbeat record when Options.HeartbeatInterval is 0.
	DefaultHeartbeatInterval = 5 * time.Second
)

const (
	// maxRetries bounds how often a group commit is retried on
	// badger.ErrConflict. Only value-log GC writes besides the writer
	// goroutine, so a conflict is rare and a retry all but always succeeds.
	maxRetries = 64
	// gcInterval is how often Run collects the value log.
	gcInterval = 10 * time.Minute
	// gcDiscardRatio is the share of stale data that makes a value-log file
	// worth rewriting.
	gcDiscardRatio = 0.5
	// memTableSize and numMemtables size badger's memtables (see Open);
	// the disk-space reserve is computed from them (space.go).
	memTableSize = 16 << 20
	numMemtables = 3
)

// Key prefixes.
const (
	prefixOTP     = "o/" // o/<record key> -> Record
	prefixMessage = "m/" // m/<request id> -> Message
	prefixExact   = "x/" // x/<carrier>/<canonical id> -> indexEntry
	prefixAlt     = "y/" // y/<carrier>/<alternate id> -> indexEntry
	prefixPending = "p/" // p/<carrier>/<canonical id> -> pendingReceipt
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// MessageTTL is how long messages and their id index live; 0 means
	// DefaultMessageTTL.
	MessageTTL time.Duration
	// PendingReceiptTTL is how long a receipt that matches no message yet is
	// kept; 0 means DefaultPendingReceiptTTL.
	PendingReceiptTTL time.Duration
	// Now is the clock used for record expiry and TTLs; nil means time.Now.
	Now func() time.Time
	// WantsCallback says whether a client has a callback URL, so that
	// receipts of other clients queue no callback; nil queues them all
	// (the dispatcher then drops those of clients without a URL).
	WantsCallback func(clientID string) bool
	// MaxPendingPerCarrier caps the receipts kept per carrier that match
	// no message; beyond it the oldest are dropped. 0 means
	// DefaultMaxPendingPerCarrier; negative means no cap.
	MaxPendingPerCarrier int
	// PendingDropped, when set, is called with the carrier of each pending
	// receipt dropped for the cap: for a metric. It must not block.
	PendingDropped func(carrier string)
	// HeartbeatInterval is how long the writer may be idle before it
	// commits a small heartbeat record, so that a store that can no longer
	// commit is noticed without traffic (health.go). 0 means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// StallTimeout is how long the store may go without a successful
	// commit, or spend in one, before Health reports it unavailable and
	// Live reports it wedged. 0 means three heartbeat intervals; less than
	// two is taken as two (an idle store commits about every 1.5).
	StallTimeout time.Duration
}

// DB is a badger database holding otpgate's state. It is safe for
// concurrent use. Every write is synced to disk before the method returns.
type DB struct {
	bdb        *badger.DB
	log        *slog.Logger
	now        func() time.Time
	wantsCB    func(clientID string) bool
	pending    pendingFilter // which p/ keys may exist
	messageTTL time.Duration
	pendingTTL time.Duration
	pendingMax int                  // per carrier; <= 0: no cap
	onDropped  func(carrier string) // PendingDropped, never nil

	mu     sync.RWMutex // held shared by operations, exclusively by Close
	closed bool
	shut   atomic.Bool // closed, for Health and Live, which must not wait for mu

	// writes feeds the writer goroutine that group-commits every write
	// (batch.go); writerDone is closed when it has stopped.
	writes     chan *writeOp
	writerDone chan struct{}

	space     *spaceGuard   // free-space reserve and WAL allocation (space.go)
	health    health        // outcome and age of the last commits (health.go)
	beatEvery time.Duration // heartbeat when idle this long
}

// Open opens (creating if needed) the badger database in dir with
// synchronous writes. It fails with ErrNoSpace when the filesystem of dir
// has less free space than badger may need on opening (space.go).
func Open(dir string, opts Options) (*DB, error) {
	if dir == "" {
		return nil, errors.New("store: open: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db := &DB{
		log:        lg,
		now:        opts.Now,
		wantsCB:    opts.WantsCallback,
		messageTTL: opts.MessageTTL,
		pendingTTL: opts.PendingReceiptTTL,
		pendingMax: opts.MaxPendingPerCarrier,
		onDropped:  opts.PendingDropped,
	}
	if db.pendingMax == 0 {
		db.pendingMax = DefaultMaxPendingPerCarrier
	}
	if db.onDropped == nil {
		db.onDropped = func(string) {}
	}
	if db.now == nil {
		db.now = time.Now
	}
	if db.messageTTL <= 0 {
		db.messageTTL = DefaultMessageTTL
	}
	if db.pendingTTL <= 0 {
		db.pendingTTL = DefaultPendingReceiptTTL
	}
	db.beatEvery = opts.HeartbeatInterval
	if db.beatEvery <= 0 {
		db.beatEvery = DefaultHeartbeatInterval
	}
	stall := opts.StallTimeout
	if stall <= 0 {
		stall = 3 * db.beatEvery
	}
	stall = max(stall, 2*db.beatEvery)
	db.health.init(stall, lg, time.Now())
	db.space = newSpaceGuard(dir, lg)
	if err := db.space.openCheck(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// Badger's defaults size it for large databases (five 64 MB memtables,
	// a 256 MB block cache, 1 GB value-log files): over 1 GB resident after
	// a million sends. OTP records are small and short-lived, so smaller
	// memtables and cache keep the gateway's memory near 300 MB at the same
	// throughput (README, "Memory").
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(128 << 20).
		WithNumCompactors(2).
		WithLogger(badgerLogger{lg}).
		WithLoggingLevel(badger.WARNING)
	bdb, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db.bdb = bdb
	if err := db.pending.load(bdb, prefixPending); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db.space.tables = db.tableBytes
	if err := db.space.findWAL(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db.startWriter()
	return db, nil
}

// tableBytes is the size of badger's tables (SST files).
func (db *DB) tableBytes() int64 {
	var n int64
	for _, l := range db.bdb.Levels() {
		n += l.Size
	}
	return n
}

// Close closes the database after the operations in flight finish. It is
// idempotent; later calls return nil.
//
// Closing badger flushes its memtable to a table, through a memory map: on
// a filesystem too full for that flush, badger is left open instead (its
// log, synced at every commit, is replayed at the next Open) and Close
// returns an error wrapping ErrNoSpace.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	db.shut.Store(true)
	db.stopWriter()
	if err := db.space.closeCheck(); err != nil {
		return fmt.Errorf("store: close: badger left open, its log is replayed at the next open: %w", err)
	}
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Run collects badger's value log every ten minutes until ctx is done, then
// returns nil. It also returns nil, at its next tick, once the DB is closed.
func (db *DB) Run(ctx context.Context) error {
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			db.pending.prune(db.now())
			if !db.gc(ctx) {
				return nil
			}
		}
	}
}

// gc runs value-log GC until badger has nothing to rewrite. It reports false
// when the DB is closed.
func (db *DB) gc(ctx context.Context) bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return false
	}
	for ctx.Err() == nil {
		err := db.bdb.RunValueLogGC(gcDiscardRatio)
		if err == nil {
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			db.log.Warn("value log gc failed", "error", err)
		}
		break
	}
	return true
}

// update runs fn in the read-write transaction of the writer's next group
// commit (batch.go) and returns once that transaction is on disk. fn sees
// the writes of the closures committed before it, may run more than once,
// and when it fails none of its writes are kept. A write whose ctx ends
// while it waits in the queue is not run and returns an error wrapping
// ErrUnavailable and ctx's error; once the writer has taken it, it
// completes or fails as a whole and update returns its outcome.
func (db *DB) update(ctx context.Context, fn func(txn *badger.Txn) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.write(ctx, fn)
}

// view runs fn in a read-only transaction.
func (db *DB) view(fn func(txn *badger.Txn) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.bdb.View(fn)
}

// GetOTP returns the record stored under key, or otp.ErrNotFound when there
// is none or its KeepUntil has passed.
func (db *DB) GetOTP(ctx context.Context, key string) (otp.Record, error) {
	var rec otp.Record
	var found bool
	err := db.view(func(txn *badger.Txn) error {
		var err error
		rec, found, err = db.getRecord(txn, key)
		return err
	})
	if err != nil {
		return otp.Record{}, fmt.Errorf("store: get otp: %w", err)
	}
	if !found {
		return otp.Record{}, fmt.Errorf("store: get otp: %w", otp.ErrNotFound)
	}
	return rec, nil
}

// UpdateOTP implements otp.Store. fn gets the live record under key, or a
// new record with only Key set and found false. Put writes *rec under key;
// a record whose KeepUntil is zero or past is deleted instead. fn's error is
// returned as is once its change is committed.
func (db *DB) UpdateOTP(ctx context.Context, key string, fn func(rec *otp.Record, found bool) (otp.Change, error)) error {
	if fn == nil {
		return errors.New("store: update otp: nil fn")
	}
	var fnErr error
	err := db.update(ctx, func(txn *badger.Txn) error {
		rec, found, err := db.getRecord(txn, key)
		if err != nil {
			return err
		}
		if !found {
			rec = otp.Record{}
		}
		rec.Key = key
		var change otp.Change
		change, fnErr = fn(&rec, found) // runs again on a conflict: fnErr is the last run's
		switch change {
		case otp.Put:
			rec.Key = key
			return db.putRecord(txn, rec)
		case otp.Delete:
			return txn.Delete([]byte(prefixOTP + key))
		default:
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("store: update otp: %w", err)
	}
	return fnErr
}

// getRecord reads the record under key; found is false when it is missing
// or its KeepUntil has passed.
func (db *DB) getRecord(txn *badger.Txn, key string) (rec otp.Record, found bool, err error) {
	item, err := txn.Get([]byte(prefixOTP + key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return otp.Record{}, false, nil
	}
	if err != nil {
		return otp.Record{}, false, err
	}
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
		return otp.Record{}, false, fmt.Errorf("record %q: %w", maskKey(key), err)
	}
	if !rec.KeepUntil.After(db.now()) {
		return otp.Record{}, false, nil
	}
	rec.Key = key
	return rec, true, nil
}

// putRecord writes rec with badger expiry at rec.KeepUntil, or deletes it
// when KeepUntil is zero or past.
func (db *DB) putRecord(txn *badger.Txn, rec otp.Record) error {
	k := []byte(prefixOTP + rec.Key)
	if !rec.KeepUntil.After(db.now()) {
		return txn.Delete(k)
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	e := badger.NewEntry(k, v)
	e.ExpiresAt = unixCeil(rec.KeepUntil)
	return txn.SetEntry(e)
}

// SaveSend implements otp.Store. In one transaction it loads the record
// under key (a new record with only Key set and found false when there is
// no live one), lets fn update it and writes it (deleting it when its
// KeepUntil is zero or past), applies to msg's parts any receipt that
// arrived before, and writes msg with its id index for MessageTTL. It
// returns msg as stored.
func (db *DB) SaveSend(ctx context.Context, key string, msg otp.Message, fn func(rec *otp.Record, found bool)) (otp.Message, error) {
	if msg.RequestID == "" {
		return otp.Message{}, errors.New("store: save send: empty request id")
	}
	var (
		stored  otp.Message
		applied []string // pending keys applied (and deleted) by the last run
	)
	err := db.update(ctx, func(txn *badger.Txn) error {
		applied = applied[:0]
		rec, found, err := db.getRecord(txn, key)
		if err != nil {
			return err
		}
		if !found {
			rec = otp.Record{}
		}
		rec.Key = key
		if fn != nil {
			fn(&rec, found)
		}
		rec.Key = key
		if err := db.putRecord(txn, rec); err != nil {
			return err
		}
		m := msg
		m.Parts = append([]otp.Part(nil), msg.Parts...)
		for i := range m.Parts {
			if err := db.applyPending(txn, m.Carrier, &m.Parts[i], &applied); err != nil {
				return err
			}
		}
		prev, _, _ := msg.Summary()
		if err := db.enqueueCallback(txn, prev, m); err != nil {
			return err
		}
		expires := unixCeil(db.now().Add(db.messageTTL))
		if err := setJSON(txn, prefixMessage+m.RequestID, m, expires); err != nil {
			return err
		}
		stored = m
		return indexMessage(txn, m, expires)
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("store: save send: %w", err)
	}
	for _, k := range applied { // committed: gone from disk
		db.pending.forget(k)
	}
	return stored, nil
}

// indexEntry locates a message part.
type indexEntry struct {
	RequestID string `json:"r"`
	Part      int    `json:"i"`
}

// indexMessage writes the x/ and y/ entries of m's parts. An x/ entry that
// belongs to another message is kept: exact ids are first come, first
// served.
func indexMessage(txn *badger.Txn, m otp.Message, expires uint64) error {
	for i, p := range m.Parts {
		canonical, alts := otp.IDForms(p.MessageID)
		if canonical == "" {
			continue
		}
		// A carrier that reuses an id (its counter wrapped) sends the next
		// receipt for the newest message: the exact index points there.
		ie := indexEntry{RequestID: m.RequestID, Part: i}
		if err := setJSON(txn, prefixExact+m.Carrier+"/"+canonical, ie, expires); err != nil {
			return err
		}
		for _, a := range alts {
			if err := setJSON(txn, prefixAlt+m.Carrier+"/"+a, ie, expires); err != nil {
				return err
			}
		}
	}
	return nil
}

// pendingReceipt is a receipt kept until its message is saved.
type pendingReceipt struct {
	Carrier   string    `json:"c,omitempty"`
	MessageID string    `json:"m"`
	State     otp.State `json:"s"`
	Error     string    `json:"e,omitempty"`
	DoneAt    time.Time `json:"t,omitzero"`
}

// applyPending applies to p the receipts waiting under its id's canonical
// and alternate forms, deletes them and appends their keys to applied (for
// the filter to forget once the transaction has committed).
func (db *DB) applyPending(txn *badger.Txn, carrier string, p *otp.Part, applied *[]string) error {
	canonical, alts := otp.IDForms(p.MessageID)
	if canonical == "" {
		return nil
	}
	for _, id := range append([]string{canonical}, alts...) {
		k := prefixPending + carrier + "/" + id
		if !db.pending.mayHave(k) {
			continue // the common case: no receipt came before this message
		}
		var pr pendingReceipt
		ok, err := getJSON(txn, k, &pr)
		if err != nil {
			return err
		}
		if !ok {
			db.pending.forget(k)
			continue
		}
		applyToPart(p, otp.Receipt{Carrier: carrier, MessageID: pr.MessageID, State: pr.State, Error: pr.Error, DoneAt: pr.DoneAt})
		if err := txn.Delete([]byte(k)); err != nil {
			return err
		}
		*applied = append(*applied, k)
	}
	return nil
}

// applyToPart records r on p unless p already has a final state or r's
// state, and reports whether p changed.
func applyToPart(p *otp.Part, r otp.Receipt) bool {
	if p.State.Final() || p.State == r.State {
		return false
	}
	p.State = r.State
	p.Error = r.Error
	p.DoneAt = r.DoneAt
	return true
}

// ApplyReceipt implements otp.ReceiptStore. The receipt's id is looked up
// by its canonical form (otp.IDForms) among the exact ids of r.Carrier's
// messages, then among their alternate forms (a part found there that
// already has another final state is not taken as the match). A receipt that matches
// nothing is kept for PendingReceiptTTL so that SaveSend applies it; a
// receipt with an empty id matches nothing and is not kept.
func (db *DB) ApplyReceipt(ctx context.Context, r otp.Receipt) (msg otp.Message, matched, changed bool, err error) {
	canonical, _ := otp.IDForms(r.MessageID)
	if canonical == "" {
		return otp.Message{}, false, false, nil
	}
	err = db.update(ctx, func(txn *badger.Txn) error {
		msg, matched, changed = otp.Message{}, false, false
		for _, prefix := range []string{prefixExact, prefixAlt} {
			var ie indexEntry
			ok, err := getJSON(txn, prefix+r.Carrier+"/"+canonical, &ie)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			mk := prefixMessage + ie.RequestID
			var m otp.Message
			item, err := txn.Get([]byte(mk))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &m) }); err != nil {
				return fmt.Errorf("message %q: %w", ie.RequestID, err)
			}
			if ie.Part < 0 || ie.Part >= len(m.Parts) {
				continue
			}
			if m.Carrier != r.Carrier {
				// A receipt of an attempt that a retry through another
				// carrier replaced (its index entries stay): that attempt
				// is in Earlier with its final state, and the current one
				// is not this carrier's to change.
				msg, matched = m, true
				return nil
			}
			// A match through an alternate form is only a guess: the
			// receipt may belong to a message whose exact id it is and
			// whose SaveSend has not committed yet. Once the guessed part
			// has its final state, a different state is that other
			// message's receipt: keep it pending for its SaveSend.
			if p := m.Parts[ie.Part]; prefix == prefixAlt && p.State.Final() && p.State != r.State {
				continue
			}
			msg, matched = m, true
			prev, _, _ := msg.Summary()
			if changed = applyToPart(&msg.Parts[ie.Part], r); changed {
				if err := db.enqueueCallback(txn, prev, msg); err != nil {
					return err
				}
				return setJSON(txn, mk, msg, item.ExpiresAt())
			}
			return nil
		}
		return db.keepPending(txn, r, canonical)
	})
	if err != nil {
		return otp.Message{}, false, false, fmt.Errorf("store: apply receipt: %w", err)
	}
	return msg, matched, changed, nil
}

// keepPending stores r until its message is saved. A final state already
// waiting is never replaced, as on a message: the first final receipt
// decides. When the carrier then holds more than pendingMax receipts, the
// oldest are deleted.
func (db *DB) keepPending(txn *badger.Txn, r otp.Receipt, canonical string) error {
	k := prefixPending + r.Carrier + "/" + canonical
	var old pendingReceipt
	ok, err := getJSON(txn, k, &old)
	if err != nil {
		return err
	}
	if ok && (old.State.Final() || old.State == r.State) {
		return nil
	}
	pr := pendingReceipt{Carrier: r.Carrier, MessageID: r.MessageID, State: r.State, Error: r.Error, DoneAt: r.DoneAt}
	expires := db.now().Add(db.pendingTTL)
	for _, ek := range db.pending.add(r.Carrier, k, expires, db.pendingMax) {
		// Forgotten by the filter whether or not this transaction commits:
		// the receipt is dropped either way (badger expires it), and
		// counted once.
		if err := txn.Delete([]byte(ek)); err != nil {
			return err
		}
		db.onDropped(r.Carrier)
	}
	return setJSON(txn, k, pr, unixCeil(expires))
}

// Message implements otp.ReceiptStore: it returns the message of requestID,
// or otp.ErrRequestNotFound.
func (db *DB) Message(ctx context.Context, requestID string) (otp.Message, error) {
	var m otp.Message
	var ok bool
	err := db.view(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(txn, prefixMessage+requestID, &m)
		return err
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("store: message: %w", err)
	}
	if !ok {
		return otp.Message{}, fmt.Errorf("store: message: %w", otp.ErrRequestNotFound)
	}
	return m, nil
}

// RecordLateAck implements otp.ReceiptStore: it gives the part a.Part of
// the message of a.RequestID the carrier's message id, indexes it (so that
// its receipt matches) and applies a receipt that came before. A message
// that went out through another carrier (the late ack is of a copy sent
// before a failover), or whose part already has an id, is left unchanged.
// It returns otp.ErrRequestNotFound while the message is not saved yet.
func (db *DB) RecordLateAck(ctx context.Context, a otp.Ack) error {
	if a.Part < 0 || a.Part >= a.Parts || a.Parts > 255 || a.MessageID == "" {
		return fmt.Errorf("store: late ack: bad part %d/%d", a.Part, a.Parts)
	}
	var applied []string // pending keys applied (and deleted) by the last run
	err := db.update(ctx, func(txn *badger.Txn) error {
		applied = applied[:0]
		k := prefixMessage + a.RequestID
		m, expires, err := getMessage(txn, k)
		if err != nil {
			return err
		}
		if m.Carrier == "" && len(m.Parts) == 0 {
			m.Carrier = a.Carrier
			m.Parts = make([]otp.Part, a.Parts)
			for i := range m.Parts {
				m.Parts[i].State = otp.StateAccepted
			}
		}
		if m.Carrier != a.Carrier || len(m.Parts) != a.Parts || m.Parts[a.Part].MessageID != "" {
			return nil
		}
		m.Parts[a.Part].MessageID = a.MessageID
		prev, _, _ := m.Summary()
		if err := db.applyPending(txn, m.Carrier, &m.Parts[a.Part], &applied); err != nil {
			return err
		}
		if err := db.enqueueCallback(txn, prev, m); err != nil {
			return err
		}
		if err := setJSON(txn, k, m, expires); err != nil {
			return err
		}
		one := m
		one.Parts = make([]otp.Part, len(m.Parts))
		one.Parts[a.Part] = m.Parts[a.Part]
		return indexMessage(txn, one, expires)
	})
	if err != nil {
		return fmt.Errorf("store: late ack: %w", err)
	}
	for _, k := range applied { // committed: gone from disk
		db.pending.forget(k)
	}
	return nil
}

// RecordRetry implements otp.ReceiptStore.
func (db *DB) RecordRetry(ctx context.Context, requestID string, a otp.Attempt) (otp.Message, error) {
	var (
		stored  otp.Message
		applied []string // pending keys applied (and deleted) by the last run
	)
	err := db.update(ctx, func(txn *badger.Txn) error {
		applied = applied[:0]
		k := prefixMessage + requestID
		m, expires, err := getMessage(txn, k)
		if err != nil {
			return err
		}
		m.Earlier = append(m.Earlier, otp.Attempt{Carrier: m.Carrier, Parts: m.Parts, SubmittedAt: m.SubmittedAt})
		m.Carrier, m.SubmittedAt = a.Carrier, a.SubmittedAt
		m.Parts = append([]otp.Part(nil), a.Parts...)
		prev, _, _ := m.Summary()
		for i := range m.Parts {
			if err := db.applyPending(txn, m.Carrier, &m.Parts[i], &applied); err != nil {
				return err
			}
		}
		if err := db.enqueueCallback(txn, prev, m); err != nil {
			return err
		}
		if err := setJSON(txn, k, m, expires); err != nil {
			return err
		}
		stored = m
		return indexMessage(txn, m, expires)
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("store: record retry: %w", err)
	}
	for _, k := range applied { // committed: gone from disk
		db.pending.forget(k)
	}
	return stored, nil
}

// getMessage reads the message under key k (prefixMessage and its request
// id) and its expiry, or returns otp.ErrRequestNotFound.
func getMessage(txn *badger.Txn, k string) (m otp.Message, expires uint64, err error) {
	item, err := txn.Get([]byte(k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return m, 0, otp.ErrRequestNotFound
	}
	if err != nil {
		return m, 0, err
	}
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &m) }); err != nil {
		return m, 0, fmt.Errorf("message %q: %w", maskKey(k), err)
	}
	return m, item.ExpiresAt(), nil
}

// MarkVerified implements otp.ReceiptStore: it sets Verified on the message
// of requestID, keeping its expiry, or returns otp.ErrRequestNotFound.
func (db *DB) MarkVerified(ctx context.Context, requestID string) error {
	err := db.update(ctx, func(txn *badger.Txn) error {
		k := prefixMessage + requestID
		m, expires, err := getMessage(txn, k)
		if err != nil {
			return err
		}
		if m.Verified {
			return nil
		}
		m.Verified = true
		return setJSON(txn, k, m, expires)
	})
	if err != nil {
		return fmt.Errorf("store: mark verified: %w", err)
	}
	return nil
}

// getJSON decodes the value under key into v and reports whether it exists.
func getJSON(txn *badger.Txn, key string, v any) (bool, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := item.Value(func(b []byte) error { return json.Unmarshal(b, v) }); err != nil {
		return false, fmt.Errorf("decode %q: %w", maskKey(key), err)
	}
	return true, nil
}

// setJSON writes v under key, expiring at expires (unix seconds; 0 never).
func setJSON(txn *badger.Txn, key string, v any, expires uint64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e := badger.NewEntry([]byte(key), b)
	e.ExpiresAt = expires
	return txn.SetEntry(e)
}

// unixCeil is t in unix seconds, rounded up so that an entry never expires
// before t.
func unixCeil(t time.Time) uint64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	if s < 0 {
		return 0
	}
	return uint64(s)
}

// badgerLogger passes badger's warnings and errors to slog and drops the rest.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.l.Error("badger", "detail", strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.l.Warn("badger", "detail", strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
