package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Disk space.
//
// badger writes its write-ahead log (the .mem files, one per memtable) and
// its tables (memtable flushes, compactions) through shared memory maps of
// files that it creates sparse: truncated to their size, no block
// allocated. On a full filesystem a store to a page without a block cannot
// be backed and the kernel raises SIGBUS: the process dies where a write
// should have failed. Two measures turn a full disk into failed writes.
//
//   - Each WAL is allocated (fallocate) as soon as badger has created it,
//     before the next commit, so the commits that fill it never touch a
//     hole. A WAL that cannot be allocated refuses every write until it can.
//   - Before each commit the filesystem's free space must cover what badger
//     may still write through maps because of the commits accepted so far:
//     the reserve. Below it the commit is refused (ErrNoSpace) and nothing
//     reaches badger. The work badger has in flight when writes stop then
//     finishes within the reserve, and an idle badger writes nothing.
//
// The reserve is, with badger's options of Open: a new WAL to allocate
// (2 × memTableSize), the flush of every memtable to a table (numMemtables
// × memTableSize), the first batches written to a WAL before it is
// allocated (2 × badger's batch limit, 15% of memTableSize), a compaction
// of every table (a compaction writes at most what it reads, and
// concurrent compactions read different tables: the tables' total size),
// the compaction of the tables those flushes write (numMemtables ×
// memTableSize again: they are not among the tables measured), and
// reserveSlack for badger's small files. With no tables that is about 137
// MiB, and it grows with the tables.
//
// What the reserve cannot cover is another process that fills the
// filesystem while a flush or a compaction is running: that one can still
// fault. The data directory belongs on a filesystem that nothing else
// fills, or one with a quota for the others.

// reserveSlack covers badger's small files and the pages it touches
// outside the WAL and the tables (value-log and discard headers, manifest).
const reserveSlack = 4 << 20

// walSize is the size of a WAL file: badger maps it at twice the memtable.
const walSize = 2 * memTableSize

// flushBytes is at most what flushing every memtable writes as tables.
const flushBytes = numMemtables * memTableSize

// baseReserve is the reserve without the tables: a WAL, the flushes, the
// compaction of what they flush, two batches, the slack.
const baseReserve = walSize + flushBytes + flushBytes + 2*(memTableSize*15/100) + reserveSlack

// tablesEvery is how often the guard reads the tables' size again.
const tablesEvery = time.Second

// spaceGuard keeps the reserve and allocates the WALs. Its methods other
// than newSpaceGuard run on the writer goroutine, or before it starts or
// after it stops.
type spaceGuard struct {
	dir    string
	log    *slog.Logger
	tables func() int64 // size of badger's tables; set once badger is open
	extra  atomic.Int64 // added to the reserve (tests)

	wal        int  // id of the newest WAL seen; -1 before findWAL
	walPending bool // it is not allocated yet
	tableBytes int64
	tablesAt   time.Time
	statFailed bool // statfs failed: logged once per run of failures
	noAlloc    bool // fallocate is not supported here: logged once
}

func newSpaceGuard(dir string, log *slog.Logger) *spaceGuard {
	return &spaceGuard{dir: dir, log: log, wal: -1}
}

// reserve is the free space that commits must leave.
func (g *spaceGuard) reserve() int64 { return baseReserve + g.tableBytes + g.extra.Load() }

// noSpace is the error of a write refused for want of space.
func (g *spaceGuard) noSpace(free, need int64) error {
	return fmt.Errorf("%w: %w: %s has %d MiB free, below the %d MiB reserve", ErrUnavailable, ErrNoSpace,
		g.dir, free>>20, (need+(1<<20)-1)>>20)
}

// free returns the free space of the data directory's filesystem, false
// when it cannot be read (the guard then lets writes through).
func (g *spaceGuard) free() (int64, bool) {
	n, err := freeBytes(g.dir)
	if err != nil {
		if !g.statFailed {
			g.log.Warn("free disk space unknown: disk-space guard off", keyError, err)
			g.statFailed = true
		}
		return 0, false
	}
	if g.statFailed {
		g.log.Info("free disk space known again: disk-space guard on")
		g.statFailed = false
	}
	return n, true
}

// openCheck refuses to open badger when the reserve for the tables already
// on disk is not free: opening flushes the memtables left by the last run
// and starts compactions, both through maps.
func (g *spaceGuard) openCheck() error {
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			g.tableBytes += fi.Size()
		}
	}
	if free, ok := g.free(); ok && free < g.reserve() {
		return g.noSpace(free, g.reserve())
	}
	return nil
}

// walPath is the file of WAL id, named as badger names it.
func (g *spaceGuard) walPath(id int) string {
	return filepath.Join(g.dir, fmt.Sprintf("%05d.mem", id))
}

// findWAL finds the WAL that badger created on opening (the newest) and
// allocates it. The older ones are full: badger flushes them and removes
// them.
func (g *spaceGuard) findWAL() error {
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".mem"))
		if err == nil && strings.HasSuffix(e.Name(), ".mem") && id > g.wal {
			g.wal = id
		}
	}
	if g.wal < 0 {
		return errors.New("no badger log file (.mem) found")
	}
	g.walPending = true
	return g.allocWALs()
}

// allocWALs allocates the WALs that badger created since the last call
// (at most one per commit: a commit fills the memtable at most once).
func (g *spaceGuard) allocWALs() error {
	for {
		if g.walPending {
			if err := g.allocate(g.walPath(g.wal)); err != nil {
				return err
			}
			g.walPending = false
		}
		if _, err := os.Stat(g.walPath(g.wal + 1)); err != nil {
			return nil // not created yet
		}
		g.wal++
		g.walPending = true
	}
}

// allocate gives every page of the file at path a block. A filesystem
// without fallocate is logged once and left to the reserve alone.
func (g *spaceGuard) allocate(path string) error {
	err := allocateFile(path)
	switch {
	case err == nil, errors.Is(err, os.ErrNotExist):
		return nil
	case isNoSpace(err):
		free, _ := freeBytes(g.dir)
		return fmt.Errorf("%w: %w: allocating %s: %d MiB free: %w", ErrUnavailable, ErrNoSpace, filepath.Base(path), free>>20, err)
	case errors.Is(err, errNoFallocate):
		if !g.noAlloc {
			g.log.Warn("log files cannot be allocated ahead: a full disk is guarded by the free-space reserve alone", keyError, err)
			g.noAlloc = true
		}
		return nil
	default:
		return fmt.Errorf("%w: allocating %s: %w", ErrUnavailable, filepath.Base(path), err)
	}
}

// check runs before each commit: it allocates a WAL that badger created
// and refuses the commit when free space is below the reserve.
func (g *spaceGuard) check(now time.Time) error {
	if err := g.allocWALs(); err != nil {
		return err
	}
	free, ok := g.free()
	if !ok {
		return nil
	}
	if g.tables != nil && (g.tablesAt.IsZero() || now.Sub(g.tablesAt) >= tablesEvery) {
		g.tableBytes, g.tablesAt = g.tables(), now
	}
	if r := g.reserve(); free < r {
		return g.noSpace(free, r)
	}
	return nil
}

// closeCheck tells whether badger can be closed: closing flushes the
// memtables to tables through maps.
func (g *spaceGuard) closeCheck() error {
	need := int64(flushBytes + reserveSlack)
	if free, ok := g.free(); ok && free < need {
		return fmt.Errorf("%w: %s has %d MiB free, %d MiB needed to flush", ErrNoSpace, g.dir, free>>20, need>>20)
	}
	return nil
}
