package store

import (
	"errors"
	"fmt"

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
// locks and without conflicts.
//
// A closure that fails must leave nothing behind, but badger has no
// savepoints and a failing closure may already have written part of its
// change. The batch is then rebuilt: the transaction is discarded and the
// closures that had succeeded are run again in a new one (closures may run
// more than once, as with a conflict retry, see otp.Store). The failing
// caller gets its error; the others are committed as usual. A closure that
// makes the transaction too big (badger.ErrTxnTooBig) ends the batch early:
// the closures before it are committed, and it starts the next one.

// maxBatchOps caps the writes committed in one transaction. Each write puts
// a handful of small entries, far below badger's transaction limits.
const maxBatchOps = 256

// writeQueue is the capacity of the writer's queue; callers beyond it wait.
const writeQueue = 1024

// writeOp is one caller's write, waiting for the writer.
type writeOp struct {
	fn       func(txn *badger.Txn) error
	done     chan error // buffered; receives the outcome once
	panicked any        // a panic of fn, re-raised in the caller
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
// committed), the commit's error, or nil once fn's writes are on disk. A
// panic in fn is raised again here. The caller must hold db.mu shared and
// must not be the writer: fn must not call update. ctx is not consulted: a
// write that was queued completes.
func (db *DB) write(fn func(txn *badger.Txn) error) error {
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	db.writes <- op
	err := <-op.done
	if op.panicked != nil {
		panic(op.panicked)
	}
	return err
}

// writeLoop is the writer goroutine: it commits the queued writes in
// batches until the queue is closed.
func (db *DB) writeLoop() {
	defer close(db.writerDone)
	queue := make([]*writeOp, 0, maxBatchOps)
	for op := range db.writes {
		queue = append(queue[:0], op)
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
		b := batch{db: db}
		for _, op := range queue {
			b.add(op)
		}
		b.commit()
		clear(queue) // let the ops be collected
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

// commit commits the transaction, rebuilding and retrying it when badger
// reports a conflict (only value-log GC writes outside the writer), and
// answers every op of the batch with the outcome. The batch is empty after.
func (b *batch) commit() {
	var err error
	for attempt := 0; b.txn != nil && len(b.ops) > 0; attempt++ {
		err = b.txn.Commit()
		if !errors.Is(err, badger.ErrConflict) || attempt >= maxRetries {
			break
		}
		b.rebuild()
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
