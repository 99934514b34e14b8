package guard

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Block is an active block as the admin port lists it.
type Block struct {
	// Rule is the rule that raised it.
	Rule string `json:"rule"`
	// Range is the blocked range, masked: "+91-987650xxxx" (the numbers
	// whose last four digits vary).
	Range string `json:"range"`
	// Client is the client whose sends are refused; "*" for all clients
	// (a carrier's conversion).
	Client string `json:"client"`
	// Carrier is the carrier whose conversion raised it, if any.
	Carrier string `json:"carrier,omitempty"`
	// Reason says what tripped the rule, with its figures.
	Reason string `json:"reason"`
	// Since is when the block was raised; Until when it lifts by itself.
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
	// Action is "block" when the guard refuses the range's sends, or
	// "monitor" when it only logs them (guard.mode monitor).
	Action string `json:"action"`
	// Refused counts the sends refused (or, in monitor mode, that would
	// have been) since the block was raised.
	Refused int64 `json:"refused"`
}

// block is an active block raised by a rule.
type block struct {
	key     string // scope "\x00" cc "-" prefix; scope "" is every client
	info    Block  // Action and Refused are filled in when listed
	digits  string // cc and prefix: what a release matches
	level   int
	monitor bool   // raised in monitor mode
	id      uint64 // of this raise, random: which node's raise the fleet kept
	refused atomic.Int64
	held    atomic.Int64 // refusals since the last log line
	logAt   atomic.Int64 // unix nanoseconds of the last log line
	// unflushed counts refusals not yet added to the fleet's count;
	// pending is set while a raise is not written to the shared state.
	unflushed atomic.Int64
	pending   atomic.Bool
}

// blockTable holds the active blocks, at most max of them.
type blockTable struct {
	mu sync.RWMutex
	m  map[string]*block
	n  atomic.Int64 // len(m), read without the lock on the send path
	// gen counts the changes of m, so that a Sync that read the fleet's
	// blocks while this node changed its own does not undo the change.
	gen atomic.Int64
}

// get returns the block under key if it is active at now.
func (t *blockTable) get(key []byte, now int64) *block {
	t.mu.RLock()
	b := t.m[string(key)]
	t.mu.RUnlock()
	if b == nil || (!b.info.Until.IsZero() && now >= b.info.Until.UnixNano()) {
		return nil
	}
	return b
}

// add makes b active unless a block is active under its key, and returns
// the block that is. A full table first drops expired blocks, then the
// block that would end first.
func (t *blockTable) add(b *block, now int64, capacity int) (active *block, added bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.m[b.key]; old != nil && (old.info.Until.IsZero() || now < old.info.Until.UnixNano()) {
		return old, false
	}
	if len(t.m) >= capacity {
		var first *block
		for k, o := range t.m {
			if !o.info.Until.IsZero() && now >= o.info.Until.UnixNano() {
				delete(t.m, k)
			} else if first == nil || o.info.Until.Before(first.info.Until) {
				first = o
			}
		}
		if len(t.m) >= capacity && first != nil {
			delete(t.m, first.key)
		}
	}
	t.m[b.key] = b
	t.n.Store(int64(len(t.m)))
	t.gen.Add(1)
	return b, true
}

// remove deletes the blocks drop selects and returns them.
func (t *blockTable) remove(drop func(b *block) bool) []*block {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*block
	for k, b := range t.m {
		if drop(b) {
			delete(t.m, k)
			out = append(out, b)
		}
	}
	if len(out) > 0 {
		t.n.Store(int64(len(t.m)))
		t.gen.Add(1)
	}
	return out
}

// removeKey deletes the block under key if it is of rule, and returns it;
// nil when there is none. Every verification asks, and seldom finds one:
// a miss takes only the read lock.
func (t *blockTable) removeKey(key []byte, rule string) *block {
	t.mu.RLock()
	b := t.m[string(key)]
	t.mu.RUnlock()
	if b == nil || b.info.Rule != rule {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b = t.m[string(key)]; b == nil || b.info.Rule != rule {
		return nil // removed or replaced meanwhile
	}
	delete(t.m, b.key)
	t.n.Store(int64(len(t.m)))
	t.gen.Add(1)
	return b
}

// reconcile makes the table the fleet's blocks, unless it changed since
// generation gen (then it does nothing and returns false). A block of the
// table that is also the fleet's keeps its counts; one that is not yet
// written to the fleet stays. It returns the blocks that left the table
// before their end: released, or lifted, on another node.
func (t *blockTable) reconcile(fleet map[string]*block, gen, now int64) (gone []*block, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen.Load() != gen {
		return nil, false
	}
	for k, b := range fleet {
		if old := t.m[k]; old != nil && old.info.Since.Equal(b.info.Since) && old.info.Rule == b.info.Rule {
			fleet[k] = old
		}
	}
	for k, old := range t.m {
		switch {
		case fleet[k] != nil:
		case old.pending.Load():
			fleet[k] = old
		case old.info.Until.IsZero() || now < old.info.Until.UnixNano():
			gone = append(gone, old)
		}
	}
	t.m = fleet
	t.n.Store(int64(len(t.m)))
	t.gen.Add(1)
	return gone, true
}

// active returns the blocks active at now, dropping the expired ones.
func (t *blockTable) active(now int64) []*block {
	t.remove(func(b *block) bool { return !b.info.Until.IsZero() && now >= b.info.Until.UnixNano() })
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*block, 0, len(t.m))
	for _, b := range t.m {
		out = append(out, b)
	}
	return out
}

// maskRange writes a range for people: "+91-987650xxxx".
func maskRange(cc, prefix string, natLen int) string {
	var b strings.Builder
	b.WriteByte('+')
	b.WriteString(cc)
	b.WriteByte('-')
	b.WriteString(prefix)
	for range max(natLen-len(prefix), 0) {
		b.WriteByte('x')
	}
	return b.String()
}

// matchesRelease reports whether a release of digits (a prefix or a
// number) covers a range: the range lies within the prefix, or contains
// the number.
func matchesRelease(rangeDigits, digits string) bool {
	return strings.HasPrefix(rangeDigits, digits) || strings.HasPrefix(digits, rangeDigits)
}
