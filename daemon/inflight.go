package daemon

import (
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/otpgate/otpgate/store"
)

// Shutdown bounds and test hooks.
var (
	// drainTimeout is DrainTimeout; a variable so that tests need not wait
	// 15 s.
	drainTimeout = DrainTimeout
	// inflightSlack is what a handler may take beyond submit_timeout: the
	// store deadline of the send path. Shutdown waits for handlers until
	// drainTimeout or submit_timeout + inflightSlack after it began,
	// whichever is later.
	inflightSlack = writeSlack
	// storeTuning, when set, adjusts the store's options (tests: short
	// heartbeat and stall timeout).
	storeTuning func(*store.Options)
	// wrapHandler, when set, wraps the API handler (tests: a handler that
	// never returns).
	wrapHandler func(http.Handler) http.Handler
)

// requests counts the HTTP requests in flight, so that shutdown can wait
// for them after a forced Close and say which are left.
type requests struct {
	mu   sync.Mutex
	live map[*http.Request]time.Time // start of each request in flight
	idle chan struct{}               // closed when live becomes empty; nil while none waits
}

// add records r until the returned func is called.
func (q *requests) add(r *http.Request) (done func()) {
	q.mu.Lock()
	if q.live == nil {
		q.live = map[*http.Request]time.Time{}
	}
	q.live[r] = time.Now()
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		delete(q.live, r)
		if len(q.live) == 0 && q.idle != nil {
			close(q.idle)
			q.idle = nil
		}
		q.mu.Unlock()
	}
}

// wait waits until no request is in flight or until deadline; then it logs
// the requests left: their number and, for the ten oldest, method and age
// (not the path: an unmatched one may carry anything, a number included).
func (q *requests) wait(deadline time.Time, log *slog.Logger) {
	q.mu.Lock()
	if len(q.live) == 0 {
		q.mu.Unlock()
		return
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	idle := q.idle
	q.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-idle:
		return
	case <-t.C:
	}
	q.mu.Lock()
	type left struct {
		what  string
		since time.Time
	}
	var ls []left
	for r, since := range q.live {
		ls = append(ls, left{r.Method, since})
	}
	q.mu.Unlock()
	if len(ls) == 0 {
		return
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].since.Before(ls[j].since) })
	now := time.Now()
	names := make([]string, 0, 10)
	for _, l := range ls[:min(len(ls), 10)] {
		names = append(names, l.what+" "+now.Sub(l.since).Round(time.Millisecond).String())
	}
	log.Warn("shutdown going on without requests still running", keyRequests, len(ls), keyOldest, names)
}
