package store

import (
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// pendingFilter remembers which pending-receipt keys may exist, so that
// SaveSend, which must look for a receipt that came before its message
// under the id's canonical and alternate forms, reads badger only when one
// may be there: almost every send has none, and each miss is an LSM lookup
// on the writer's path.
//
// It holds a superset of the committed keys: keepPending adds a key before
// its transaction commits (harmless if it does not), and a key is dropped
// only when a lookup in the writer's transaction finds it gone, or after
// its TTL. Open fills it from the keys on disk.
type pendingFilter struct {
	mu   sync.Mutex
	keys map[string]time.Time // key -> expiry
}

func (f *pendingFilter) load(bdb *badger.DB, prefix string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = map[string]time.Time{}
	return bdb.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte(prefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			exp := time.Unix(int64(item.ExpiresAt()), 0)
			if item.ExpiresAt() == 0 {
				exp = time.Now().Add(DefaultPendingReceiptTTL)
			}
			f.keys[string(item.Key())] = exp
		}
		return nil
	})
}

func (f *pendingFilter) add(key string, expires time.Time) {
	f.mu.Lock()
	f.keys[key] = expires
	f.mu.Unlock()
}

func (f *pendingFilter) mayHave(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.keys[key]
	return ok
}

func (f *pendingFilter) forget(key string) {
	f.mu.Lock()
	delete(f.keys, key)
	f.mu.Unlock()
}

// prune drops keys whose TTL has passed; it returns how many are left.
func (f *pendingFilter) prune(now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, exp := range f.keys {
		if now.After(exp) {
			delete(f.keys, k)
		}
	}
	return len(f.keys)
}
