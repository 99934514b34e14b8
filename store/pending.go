package store

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// DefaultMaxPendingPerCarrier is how many receipts that match no message
// are kept per carrier when Options.MaxPendingPerCarrier is 0.
const DefaultMaxPendingPerCarrier = 10000

// pendingFilter remembers which pending-receipt keys may exist, so that
// SaveSend, which must look for a receipt that came before its message
// under the id's canonical and alternate forms, reads badger only when one
// may be there: almost every send has none, and each miss is an LSM lookup
// on the writer's path.
//
// It holds a superset of the committed keys: keepPending adds a key before
// its transaction commits (harmless if it does not), and a key is dropped
// only when a lookup in the writer's transaction finds it gone, after its
// TTL, or when its carrier holds more than the cap (add evicts the
// oldest; its caller deletes it in the same transaction).
//
// It also counts the keys of each carrier, oldest first, so that a carrier
// sending receipts for ids nobody sent (another system's traffic on a
// shared account, a broken id format) cannot fill the disk and this map
// for a day: beyond the cap the oldest go. The newest are kept because a
// genuine pending receipt waits only until its submit's acknowledgement is
// processed, seconds at most.
type pendingFilter struct {
	mu        sync.Mutex
	keys      map[string]pendingEntry // key -> entry
	byCarrier map[string]*carrierPending
	seq       uint64
}

type pendingEntry struct {
	carrier string
	expires time.Time
	seq     uint64 // insertion order; tells a live order entry from a stale one
}

// carrierPending is one carrier's keys in insertion order. order may hold
// stale refs (keys forgotten or expired since), skipped when met; n is the
// number of live keys.
type carrierPending struct {
	n     int
	order []pendingRef
}

type pendingRef struct {
	key string
	seq uint64
}

func (f *pendingFilter) load(bdb *badger.DB, prefix string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = map[string]pendingEntry{}
	f.byCarrier = map[string]*carrierPending{}
	type found struct {
		key, carrier string
		expires      time.Time
	}
	var all []found
	err := bdb.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			exp := time.Unix(int64(item.ExpiresAt()), 0)
			if item.ExpiresAt() == 0 {
				exp = time.Now().Add(DefaultPendingReceiptTTL)
			}
			k := string(item.Key())
			var pr pendingReceipt
			_ = item.Value(func(v []byte) error { return json.Unmarshal(v, &pr) })
			carrier := pr.Carrier
			if carrier == "" { // kept before the carrier was recorded
				carrier, _, _ = strings.Cut(strings.TrimPrefix(k, prefix), "/")
			}
			all = append(all, found{key: k, carrier: carrier, expires: exp})
		}
		return nil
	})
	// Every pending receipt lives the same TTL: the earliest expiry is
	// the oldest.
	slices.SortStableFunc(all, func(a, b found) int { return a.expires.Compare(b.expires) })
	for _, e := range all {
		f.insert(e.carrier, e.key, e.expires)
	}
	return err
}

// add records key of carrier, expiring at expires. When that makes the
// carrier hold more than limit keys (limit > 0), the oldest are forgotten
// and returned, for the caller to delete.
func (f *pendingFilter) add(carrier, key string, expires time.Time, limit int) (evicted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.keys[key]; ok {
		e.expires = expires
		f.keys[key] = e
		return nil
	}
	cp := f.insert(carrier, key, expires)
	for limit > 0 && cp.n > limit && len(cp.order) > 0 {
		ref := cp.order[0]
		cp.order = cp.order[1:]
		if e, ok := f.keys[ref.key]; ok && e.seq == ref.seq {
			delete(f.keys, ref.key)
			cp.n--
			evicted = append(evicted, ref.key)
		}
	}
	return evicted
}

// insert adds a key known to be absent. f.mu must be held.
func (f *pendingFilter) insert(carrier, key string, expires time.Time) *carrierPending {
	f.seq++
	f.keys[key] = pendingEntry{carrier: carrier, expires: expires, seq: f.seq}
	cp := f.byCarrier[carrier]
	if cp == nil {
		cp = &carrierPending{}
		f.byCarrier[carrier] = cp
	}
	cp.n++
	cp.order = append(cp.order, pendingRef{key: key, seq: f.seq})
	if len(cp.order) > 2*cp.n+64 { // mostly stale: compact
		live := cp.order[:0]
		for _, r := range cp.order {
			if e, ok := f.keys[r.key]; ok && e.seq == r.seq {
				live = append(live, r)
			}
		}
		cp.order = slices.Clip(live)
	}
	return cp
}

func (f *pendingFilter) mayHave(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.keys[key]
	return ok
}

func (f *pendingFilter) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remove(key)
}

// remove forgets key. f.mu must be held.
func (f *pendingFilter) remove(key string) {
	e, ok := f.keys[key]
	if !ok {
		return
	}
	delete(f.keys, key)
	if cp := f.byCarrier[e.carrier]; cp != nil {
		if cp.n--; cp.n <= 0 {
			delete(f.byCarrier, e.carrier)
		}
	}
}

// count returns how many keys of carrier may exist.
func (f *pendingFilter) count(carrier string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cp := f.byCarrier[carrier]; cp != nil {
		return cp.n
	}
	return 0
}

// prune drops keys whose TTL has passed; it returns how many are left.
func (f *pendingFilter) prune(now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, e := range f.keys {
		if now.After(e.expires) {
			f.remove(k)
		}
	}
	return len(f.keys)
}
