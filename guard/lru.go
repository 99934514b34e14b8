package guard

import (
	"hash/maphash"
	"sync"
)

// lruShards splits a table so that sends to different ranges rarely wait
// for one another. A power of two.
const lruShards = 32

// lru is a table of per-range state with a cap on its entries: when a
// shard is full, its least recently used entry is forgotten. Whatever the
// keys callers make up, it holds at most cap entries (rounded up to a
// multiple of lruShards). Each shard has its own lock; callers hold it,
// through with, while they read or change an entry.
type lru[V any] struct {
	seed   maphash.Seed
	shards [lruShards]lruShard[V]
}

type lruShard[V any] struct {
	mu   sync.Mutex
	m    map[string]*lruEntry[V]
	head lruEntry[V] // sentinel: head.next is the most recently used
	cap  int
	_    [32]byte // keeps shards' locks on separate cache lines
}

type lruEntry[V any] struct {
	key        string
	prev, next *lruEntry[V]
	v          V
}

func newLRU[V any](capacity int) *lru[V] {
	t := &lru[V]{seed: maphash.MakeSeed()}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = map[string]*lruEntry[V]{}
		s.head.next, s.head.prev = &s.head, &s.head
	}
	t.setCap(capacity)
	return t
}

// setCap changes the cap; shards over it shrink at their next insert.
func (t *lru[V]) setCap(capacity int) {
	per := max(1, (capacity+lruShards-1)/lruShards)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.cap = per
		s.mu.Unlock()
	}
}

func (t *lru[V]) shard(key []byte) *lruShard[V] {
	return &t.shards[maphash.Bytes(t.seed, key)&(lruShards-1)]
}

// with calls fn with the entry of key, under its shard's lock. When there
// is none, create decides: false calls fn with nil, true makes a zero
// entry (forgetting the least recently used one if the shard is full).
// The entry becomes the most recently used.
func (t *lru[V]) with(key []byte, create bool, fn func(v *V)) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil {
		if !create {
			fn(nil)
			return
		}
		for len(s.m) >= s.cap {
			old := s.head.prev
			s.unlink(old)
			delete(s.m, old.key)
		}
		e = &lruEntry[V]{key: string(key)}
		s.m[e.key] = e
	} else {
		s.unlink(e)
	}
	// Front of the list.
	e.next, e.prev = s.head.next, &s.head
	s.head.next.prev = e
	s.head.next = e
	fn(&e.v)
}

// remove forgets key.
func (t *lru[V]) remove(key []byte) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[string(key)]; e != nil {
		s.unlink(e)
		delete(s.m, e.key)
	}
}

// removeIf forgets every entry whose key satisfies drop.
func (t *lru[V]) removeIf(drop func(key string) bool) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if drop(k) {
				s.unlink(e)
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// len returns the number of entries.
func (t *lru[V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *lruShard[V]) unlink(e *lruEntry[V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}
