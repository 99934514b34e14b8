package smpp

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// fairPace hands a carrier's tokens (its adaptive bucket) to the submits
// waiting for them in weighted fair order by client: start-time fair
// queueing, where a client's submit is tagged with the later of the
// current virtual time and the tag after its client's previous submit
// (1/weight further on), and the smallest tag goes first. A client alone
// gets every token; a client whose burst fills the queue cannot starve
// another, whose submits take turns with it in proportion to the weights
// (clients[].weight). Only one submit at a time waits on the bucket; the
// others wait for their turn. Safe for concurrent use.
type fairPace struct {
	a *adaptive

	mu     sync.Mutex
	vtime  float64            // tag of the submit served last
	finish map[string]float64 // per client: the tag after its last queued submit
	q      waitQueue
	seq    uint64
	busy   bool // a submit holds the turn
}

func newFairPace(a *adaptive) *fairPace { return &fairPace{a: a, finish: map[string]float64{}} }

type waiter struct {
	tag   float64
	seq   uint64
	ready chan struct{} // closed when it is this submit's turn
	index int           // in the queue; -1 once taken out
}

// wait takes one token for a submit of client, after the submits with
// smaller tags. Errors as adaptive.wait; ErrThrottled also at once when
// the submits ahead would take the bucket past ctx's deadline.
func (f *fairPace) wait(ctx context.Context, client string, weight float64) error {
	if f.a.lim.Limit() == rate.Inf {
		return f.a.wait(ctx)
	}
	if !(weight > 0) {
		weight = 1
	}
	f.mu.Lock()
	tag := max(f.vtime, f.finish[client])
	f.finish[client] = tag + 1/weight
	if !f.busy {
		f.busy, f.vtime = true, tag
		f.mu.Unlock()
		return f.take(ctx)
	}
	w := &waiter{tag: tag, seq: f.seq, ready: make(chan struct{})}
	f.seq++
	if dl, ok := ctx.Deadline(); ok {
		ahead := 1 // the submit holding the turn
		for _, o := range f.q {
			if o.tag < tag || (o.tag == tag && o.seq < w.seq) {
				ahead++
			}
		}
		if lim := f.a.lim.Limit(); lim > 0 && time.Now().Add(time.Duration(float64(ahead)/float64(lim)*float64(time.Second))).After(dl) {
			f.mu.Unlock()
			return fmt.Errorf("%w: %d submits ahead at %.0f/s", ErrThrottled, ahead, float64(lim))
		}
	}
	heap.Push(&f.q, w)
	f.mu.Unlock()
	select {
	case <-w.ready:
		return f.take(ctx)
	case <-ctx.Done():
		f.mu.Lock()
		if w.index >= 0 {
			heap.Remove(&f.q, w.index)
			f.mu.Unlock()
			return ctx.Err()
		}
		f.mu.Unlock()
		f.next() // the turn came as ctx ended: pass it on
		return ctx.Err()
	}
}

// take waits on the bucket as the holder of the turn, then passes it on.
func (f *fairPace) take(ctx context.Context) error {
	err := f.a.wait(ctx)
	f.next()
	return err
}

// next gives the turn to the queued submit with the smallest tag.
func (f *fairPace) next() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.q) == 0 {
		f.busy = false
		// Tags at or below the virtual time no longer matter.
		for c, t := range f.finish {
			if t <= f.vtime {
				delete(f.finish, c)
			}
		}
		return
	}
	w := heap.Pop(&f.q).(*waiter)
	f.vtime = w.tag
	close(w.ready)
}

// waitQueue is a heap of waiters by tag, then arrival.
type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	return q[i].tag < q[j].tag || (q[i].tag == q[j].tag && q[i].seq < q[j].seq)
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	w.index = -1
	return w
}
