package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Group commit.
//
// With SyncWrites every badger commit waits for an fsync, so requests that
// each commit their own transaction are bounded by the disk's sync rate. All
// writes of a DB therefore go through one writer goroutine (writeLoop),
// started by Open and stopped by Close. It takes every write that is queued
// (up to maxBatchOps), runs their closures one after the other inside ONE
// read-write transaction, commits it once, and only then answers each
// caller: no caller hears of success before its writes are on disk.
//
// Because one goroutine runs all writes in order, a closure reads what the
// closures before it in the same transaction wrote (badger transactions
// read their own writes), so per-key read-modify-write stays atomic without
// locks and without conflicts (badger's conflict detection is off, db.go).
//
// A closure that fails must leave nothing behind, but badger has no
// savepoints and a failing closure may already have written part of its
// change. The batch is then rebuilt: the transaction is discarded and the
// closures that had succeeded are run again in a new one (closures may run
// more than once, see otp.Store). The failing
// caller gets its error; the others are committed as usual. A closure that
// makes the transaction too big (badger.ErrTxnTooBig) ends the batch early:
// the closures before it are committed, and it starts the next one.
//
// A write waits in the queue as long as its context allows: a caller whose
// context ends first takes its write back (it is never run) and gets an
// error. Once the writer has taken a write, it is run and committed or
// failed as a whole, and the caller waits for that outcome: an answer that
// says "not done" is then always true.
//
// Before each commit the free-space guard (space.go) may refuse it; the
// outcome of each commit, and a heartbeat commit when the writer is idle,
// feed the store's health (health.go).

// maxBatchOps caps the writes committed in one transaction. Each write puts
// a handful of small entries, far below badger's transaction limits.
const maxBatchOps = 256

// writeQueue is the capacity of the writer's queue; callers beyond it wait.
const writeQueue = 1024

// States of a writeOp: the writer takes a queued op before it runs it; a
// caller whose context ends while the op is queued abandons it.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// writeOp is one caller's write, waiting for the writer.
type writeOp struct {
	fn       func(txn *badger.Txn) error
	done     chan error   // buffered; receives the outcome once
	panicked any          // a panic of fn, re-raised in the caller
	state    atomic.Int32 // opQueued, opTaken or opAbandoned
}

// errPanicked stands for a closure's panic until the caller re-raises it.
var errPanicked = errors.New("store: write panicked")

// startWriter starts the writer goroutine. Open calls it once.
func (db *DB) startWriter() {
	db.writes = make(chan *writeOp, writeQueue)
	db.writerDone = make(chan struct{})
	go db.writeLoop()
}

// stopWriter stops the writer goroutine and waits for it. Close calls it
// with db.mu held exclusively, so no write is queued or in flight.
func (db *DB) stopWriter() {
	close(db.writes)
	<-db.writerDone
}

// write queues fn for the writer and waits for the commit of the
// transaction that ran it. It returns fn's error (fn's writes then are not
// committed), the commit's error (wrapping ErrUnavailable), or nil once
// fn's writes are on disk. When ctx ends before the writer has taken fn,
// fn is never run and the error wraps ErrUnavailable and ctx's error. A
// panic in fn is raised again here. The caller must hold db.mu shared and
// must not be the writer: fn must not call update.
func (db *DB) write(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return notQueued(err)
	}
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	select {
	case db.writes <- op:
	case <-ctx.Done():
		return notQueued(ctx.Err())
	}
	var err error
	select {
	case err = <-op.done:
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return notQueued(ctx.Err())
		}
		err = <-op.done // taken: it completes or fails as a whole
	}
	if op.panicked != nil {
		panic(op.panicked)
	}
	return err
}

// notQueued is the error of a write whose context ended before the writer
// took it: it was not run.
func notQueued(err error) error {
	return fmt.Errorf("%w: write not run, its context ended while it waited: %w", ErrUnavailable, err)
}

// writeLoop is the writer goroutine: it commits the queued writes in
// batches until the queue is closed, and a heartbeat when it has been idle
// for db.beatEvery.
func (db *DB) writeLoop() {
	defer close(db.writerDone)
	queue := make([]*writeOp, 0, maxBatchOps)
	tick := time.NewTicker(max(db.beatEvery/2, time.Millisecond))
	defer tick.Stop()
	queue = append(queue, heartbeatOp(time.Now())) // prove at once that commits work
	for {
		if len(queue) == 0 {
			select {
			case op, ok := <-db.writes:
				if !ok {
					return
				}
				queue = append(queue, op)
			case now := <-tick.C:
				if db.health.idle(now) < db.beatEvery {
					continue
				}
				queue = append(queue, heartbeatOp(now))
			}
		}
	fill:
		for len(queue) < maxBatchOps {
			select {
			case op, ok := <-db.writes:
				if !ok {
					break fill
				}
				queue = append(queue, op)
			default:
				break fill
			}
		}
		db.health.begin(time.Now())
		b := batch{db: db}
		for _, op := range queue {
			if op.state.CompareAndSwap(opQueued, opTaken) { // else abandoned by its caller
				b.add(op)
			}
		}
		b.commit()
		db.health.end(time.Now())
		clear(queue) // let the ops be collected
		queue = queue[:0]
	}
}

// batch is one transaction being filled by the writer.
type batch struct {
	db  *DB
	txn *badger.Txn // nil until the first add
	ops []*writeOp  // ops whose writes are in txn, not yet answered
}

// add runs op in the batch's transaction. When op fails it is answered with
// its error and the transaction is rebuilt without its writes.
func (b *batch) add(op *writeOp) {
	if b.txn == nil {
		b.txn = b.db.bdb.NewTransaction(true)
	}
	err := run(op, b.txn)
	if err == nil {
		b.ops = append(b.ops, op)
		return
	}
	b.rebuild()
	if errors.Is(err, badger.ErrTxnTooBig) && len(b.ops) > 0 {
		// Commit what fits, then give op a transaction of its own.
		b.commit()
		b.add(op)
		return
	}
	op.done <- err
}

// rebuild discards the transaction and runs the batch's ops again in a new
// one. An op that fails now (it should not: the writer is the only one
// writing) is answered with its error and dropped, and the rebuild starts
// over without it.
func (b *batch) rebuild() {
	for {
		if b.txn != nil {
			b.txn.Discard()
		}
		b.txn = b.db.bdb.NewTransaction(true)
		failed := -1
		for i, op := range b.ops {
			if err := run(op, b.txn); err != nil {
				op.done <- err
				failed = i
				break
			}
		}
		if failed < 0 {
			return
		}
		b.ops = append(b.ops[:failed:failed], b.ops[failed+1:]...)
	}
}

// commit commits the transaction and answers every op of the batch with
// the outcome. The free-space guard may refuse the commit first. The batch
// is empty after.
func (b *batch) commit() {
	var err error
	if b.txn != nil && len(b.ops) > 0 {
		start := time.Now()
		err = b.db.space.check(start)
		if err == nil {
			err = b.txn.Commit()
		}
		if err != nil && !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: commit: %w", ErrUnavailable, err)
		}
		end := time.Now()
		b.db.health.committed(end, err)
		b.db.onCommit(end.Sub(start), len(b.ops), err)
	}
	if b.txn != nil {
		b.txn.Discard()
		b.txn = nil
	}
	for _, op := range b.ops {
		op.done <- err
	}
	b.ops = nil
}

// run calls op's closure on txn, turning a panic into errPanicked and
// keeping the panic for the caller.
func run(op *writeOp, txn *badger.Txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			op.panicked = p
			err = fmt.Errorf("%w: %v", errPanicked, p)
		}
	}()
	return op.fn(txn)
}
