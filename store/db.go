package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
	// gcInterval is how often Run collects the value log.
	gcInterval = 10 * time.Minute
	// gcDiscardRatio is the share of stale data that makes a value-log file
	// worth rewriting.
	gcDiscardRatio = 0.5
	// memTableSize and numMemtables size badger's memtables (see Open);
	// the disk-space reserve is computed from them (space.go).
	memTableSize = 16 << 20
	numMemtables = 3
	// numL0Tables flushed memtables make badger compact level 0 into
	// level 1; at numL0TablesStall it stops taking writes until that
	// compaction is done. A flushed memtable holds records (keyed by
	// client and phone number) and messages (keyed by time), so it spans
	// nearly the whole key range, and every level-0 compaction rewrites
	// nearly all of level 1: waiting for 6 tables instead of 3 halves how
	// often that happens. A read consults the bloom filter of every
	// level-0 table (up to 6, 12 at the stall, instead of 3 and 8).
	// Interleaved soaks against 3 and 8: docs/performance.md.
	numL0Tables      = 6
	numL0TablesStall = 12
)

// Key prefixes.
const (
	prefixOTP     = "o/" // o/<record key> -> Record
	prefixMessage = "m/" // m/<request id> -> Message
	prefixExact   = "x/" // x/<carrier>/<canonical id> -> indexEntry
	// y/<carrier>/<alternate id> indexed alternate id forms in earlier
	// releases: left to expire with their messages, never read.
	prefixPending = "p/" // p/<carrier>/<canonical id> -> pendingReceipt
	// v/<request id> -> empty: the request's code verified (MarkVerified).
	prefixVerified = "v/"
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
	// Committed, when set, is called by the writer after each commit with
	// its duration (free-space check and fsync included), the number of
	// writes it carried (the idle heartbeat is one) and its error: for
	// metrics. It must not block.
	Committed func(d time.Duration, writes int, err error)
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

	onCommit func(time.Duration, int, error) // Committed, never nil

	mu     sync.RWMutex // held shared by operations, exclusively by Close
	closed bool
	shut   atomic.Bool // closed, for Health and Live, which must not wait for mu

	// writes feeds the writer goroutine that group-commits every write
	// (batch.go); writerDone is closed when it has stopped.
	writes     chan *writeOp
	writerDone chan struct{}

	space     *spaceGuard   // free-space reserve and WAL allocation (space.go)
	pager     *tablePager   // pages badger's tables out; Run's
	pages     pagesSchedule // when pager runs next; Run's
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
	if db.onCommit = opts.Committed; db.onCommit == nil {
		db.onCommit = func(time.Duration, int, error) {}
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
	// The directory as /proc/self/maps names it: absolute, no symlinks.
	realDir := dir
	if abs, err := filepath.Abs(dir); err == nil {
		realDir = abs
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			realDir = real
		}
	}
	db.pager = newTablePager(realDir)
	db.pages = pagesSchedule{every: tablePagesInterval, growth: tablePagesGrowth, low: -1}
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
		WithNumLevelZeroTables(numL0Tables).
		WithNumLevelZeroTablesStall(numL0TablesStall).
		// 16 MiB, not 32: over a million sends the heap's peak (a
		// compaction's builders on top of the memtables and this cache)
		// took the process past 256 MiB in 2 of 8 soaks with 32 MiB, in
		// none of 3 with 16, verify-otp no slower (docs/performance.md).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(128 << 20).
		WithNumCompactors(2).
		// Not WithLoggingLevel: it replaces the logger with badger's own,
		// which writes plain text to stderr; badgerLogger drops what is
		// below a warning itself.
		WithLogger(badgerLogger{lg}).
		WithMetricsEnabled(false). // its expvar counters cost every read and write; nothing reads them
		// Every transaction that writes is the writer goroutine's, one
		// after the other (batch.go), and value-log GC writes around
		// transactions: no two can conflict, and the commit needs no
		// retry. Badger's conflict detection would hash every key written
		// into a map per transaction and keep each commit's map until the
		// oldest reader ends: 1.3 % of the CPU in a profile of
		// BenchmarkGroupCommit/Send.
		WithDetectConflicts(false)
	// Compactions build their tables in the heap, several at once, each
	// in a buffer twice the table's size; badger doubles the table size at
	// each level (2, 4, 8 MB...). Tables of 2 MB at every level cut those
	// peaks: over a million sends and verifies the process peaked at 245
	// MiB instead of 320 MiB (GOMEMLIMIT=192MiB), with no loss of rate.
	bo.TableSizeMultiplier = 1
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

// Run collects badger's value log every ten minutes and releases its table
// pages as pagesSchedule says until ctx is done, then returns nil. It
// also returns nil, at its next tick, once the DB is closed.
func (db *DB) Run(ctx context.Context) error {
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	pages := time.NewTicker(tablePagesCheck)
	defer pages.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-pages.C:
			if !db.pageTables(now) {
				pages.Stop()
			}
		case <-t.C:
			db.pending.prune(db.now())
			if !db.gc(ctx) {
				return nil
			}
		}
	}
}

// Table pages.
//
// Badger reads and writes its tables (.sst files) through memory maps.
// The kernel keeps a page it read or wrote mapped in the process until
// memory runs short, so the gateway's resident memory would grow with the
// data kept (messages live for MessageTTL), not with the work in flight:
// after a million sends the tables alone would be 400 MB of it. The store
// therefore asks the kernel to page their data blocks out (tablePager,
// Linux only); their indexes and bloom filters, a few percent of them,
// stay. The write-ahead logs (.mem, up to 16 MB resident) go too: they are
// read back only after a crash.
//
// It does so every tablePagesInterval, and sooner while badger compacts: a
// compaction reads its tables and writes new ones through their maps at
// tens of MB a second, which a release a second left resident for up to a
// second (file pages up to 101 MiB over a million sends, against 62 MiB
// since). So every tablePagesCheck the store reads how much of the
// process's memory is file pages (/proc/self/statm, a few microseconds)
// and releases once that has grown by tablePagesGrowth. A release is a
// pass over /proc/self/maps and an madvise per mapping: 6–9 ms on average
// in a million-send soak, most of it the kernel dropping the pages, about
// 1.2 a second.
const (
	tablePagesInterval = time.Second
	tablePagesCheck    = 100 * time.Millisecond
	tablePagesGrowth   = 8 << 20
)

// pagesSchedule says when the table pages are released next: once every
// has passed since the last release, or at a check once the resident file
// pages have grown by growth over the fewest seen since then.
type pagesSchedule struct {
	every  time.Duration
	growth int64
	last   time.Time // of the last release
	low    int64     // resident file bytes, the fewest seen since the last release; -1: unknown
}

// due reports whether to release now, given the process's resident file
// bytes (negative when unknown: then only every counts). A known reading
// under the low becomes the low.
func (s *pagesSchedule) due(now time.Time, resident int64) bool {
	if now.Sub(s.last) >= s.every {
		return true
	}
	if resident < 0 {
		return false
	}
	if s.low < 0 || resident < s.low {
		s.low = resident
	}
	return resident-s.low >= s.growth
}

// released records a release at now, after which resident file bytes
// were resident (-1: unknown).
func (s *pagesSchedule) released(now time.Time, resident int64) {
	s.last, s.low = now, resident
}

// pageTables releases the table pages if the schedule says so. It reports
// false when releasing is not supported here.
func (db *DB) pageTables(now time.Time) bool {
	if !db.pages.due(now, db.pager.resident()) {
		return true
	}
	ok := db.releaseTablePages()
	db.pages.released(now, db.pager.resident())
	return ok
}

// releaseTablePages releases the table pages mapped in this process. It
// reports false when releasing is not supported here, which it logs once.
func (db *DB) releaseTablePages() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return true
	}
	_, err := db.pager.release()
	if errors.Is(err, errNoPageout) {
		db.log.Info("badger's table pages stay mapped: resident memory grows with the data kept", keyError, err)
		return false
	}
	if err != nil {
		db.log.Warn("releasing badger's table pages failed", keyError, err)
	}
	return true
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
			db.log.Warn("value log gc failed", keyError, err)
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
