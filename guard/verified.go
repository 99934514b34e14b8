package guard

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"
)

// verifiedSet remembers numbers that verified a code, and when, in a
// fixed-size table: buckets of four slots, each slot 8 bytes (a 32-bit
// fingerprint of the number and the minute of its last verification).
// A full bucket gives way to its oldest entry, so floods of distinct
// numbers cost nothing but the oldest memories. Lookups use a keyed hash:
// nobody can choose numbers that collide with a verified one (a false
// match needs 32 bits of fingerprint and the bucket to agree). Slots are
// read and written atomically, so it needs no lock; a race between two
// inserts into one bucket may lose one of them, which only means that
// number is not exempt.
type verifiedSet struct {
	seed  maphash.Seed
	slots []atomic.Uint64
	mask  uint64 // buckets - 1
	epoch time.Time
}

const verifiedWays = 4

func newVerifiedSet(capacity int, epoch time.Time) *verifiedSet {
	buckets := max(1, (capacity+verifiedWays-1)/verifiedWays)
	buckets = 1 << bits.Len(uint(buckets-1)) // a power of two
	return &verifiedSet{seed: maphash.MakeSeed(), slots: make([]atomic.Uint64, buckets*verifiedWays),
		mask: uint64(buckets - 1), epoch: epoch}
}

// capacity is the number of numbers the set can hold.
func (s *verifiedSet) capacity() int { return len(s.slots) }

// minute is t in minutes since the epoch, at least 1 (0 marks an empty slot).
func (s *verifiedSet) minute(t time.Time) uint32 {
	m := t.Sub(s.epoch) / time.Minute
	if m < 1 {
		return 1
	}
	return uint32(min(m+1, 1<<32-1))
}

func (s *verifiedSet) locate(number string) (base uint64, fp uint32) {
	h := maphash.String(s.seed, number)
	return (h & s.mask) * verifiedWays, uint32(h>>32) | 1
}

// add records that number verified at t.
func (s *verifiedSet) add(number string, t time.Time) {
	base, fp := s.locate(number)
	stamp := s.minute(t)
	oldest, oldestAt := base, uint32(1<<32-1)
	for i := base; i < base+verifiedWays; i++ {
		v := s.slots[i].Load()
		if uint32(v>>32) == fp {
			s.slots[i].Store(uint64(fp)<<32 | uint64(stamp))
			return
		}
		if at := uint32(v); at < oldestAt {
			oldest, oldestAt = i, at
		}
	}
	s.slots[oldest].Store(uint64(fp)<<32 | uint64(stamp))
}

// recent reports whether number verified within ttl before now.
func (s *verifiedSet) recent(number string, now time.Time, ttl time.Duration) bool {
	base, fp := s.locate(number)
	for i := base; i < base+verifiedWays; i++ {
		v := s.slots[i].Load()
		if uint32(v>>32) != fp {
			continue
		}
		at := s.epoch.Add(time.Duration(uint32(v)-1) * time.Minute)
		return now.Sub(at) < ttl+time.Minute // minute resolution: round up
	}
	return false
}
