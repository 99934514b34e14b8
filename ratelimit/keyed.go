package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpgate/otpgate/otp"
)

var _ otp.Limiter = (*Keyed)(nil)

const (
	numShards = 64 // a power of two
	// shrinkMin is the map size below which a shard is not worth rebuilding.
	shrinkMin = 1024
	// defaultSweepEvery is Run's interval when none is given.
	defaultSweepEvery = time.Minute
)

// Keyed is a set of token buckets, one per key, created on first use. It is
// safe for concurrent use. A bucket that has refilled to its burst carries
// no state worth keeping, so Sweep drops it: a later call starts a new,
// full bucket, which is exactly what it would have found.
type Keyed struct {
	now    func() time.Time
	shards [numShards]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	peak    int      // largest len(buckets) since the map was last rebuilt
	_       [40]byte // keeps shards on separate cache lines
}

// New returns an empty Keyed reading the time from now (nil: time.Now).
func New(now func() time.Time) *Keyed {
	if now == nil {
		now = time.Now
	}
	k := &Keyed{now: now}
	for i := range k.shards {
		k.shards[i].buckets = make(map[string]*rate.Limiter)
	}
	return k
}

// Allow takes one token from the bucket of key, refilled at perSecond tokens
// a second up to burst, and reports whether there was one. It implements
// otp.Limiter. A perSecond that is not above zero means no limit; a burst
// below one counts as one. When perSecond or burst differ from the bucket's
// (a config reload), the bucket takes the new values and keeps its tokens.
func (k *Keyed) Allow(key string, perSecond float64, burst int) bool {
	return k.AllowAt(key, perSecond, burst, k.now())
}

// AllowAt is Allow at time t.
func (k *Keyed) AllowAt(key string, perSecond float64, burst int, t time.Time) bool {
	if !(perSecond > 0) {
		return true
	}
	if burst < 1 {
		burst = 1
	}
	s := &k.shards[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.buckets[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(perSecond), burst)
		s.buckets[key] = lim
		if n := len(s.buckets); n > s.peak {
			s.peak = n
		}
	} else {
		if lim.Limit() != rate.Limit(perSecond) {
			lim.SetLimitAt(t, rate.Limit(perSecond))
		}
		if lim.Burst() != burst {
			lim.SetBurstAt(t, burst)
		}
	}
	// The shard lock is held while the token is taken so that Sweep cannot
	// drop the bucket between the lookup and the take.
	return lim.AllowN(t, 1)
}

// Sweep drops the buckets that are full at t and returns how many it
// dropped. A shard whose map shrank to a quarter of its peak is rebuilt so
// that the memory is given back.
func (k *Keyed) Sweep(t time.Time) int {
	dropped := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		for key, lim := range s.buckets {
			if lim.TokensAt(t) >= float64(lim.Burst()) {
				delete(s.buckets, key)
				dropped++
			}
		}
		if n := len(s.buckets); s.peak >= shrinkMin && n <= s.peak/4 {
			m := make(map[string]*rate.Limiter, n)
			for key, lim := range s.buckets {
				m[key] = lim
			}
			s.buckets, s.peak = m, n
		}
		s.mu.Unlock()
	}
	return dropped
}

// Run calls Sweep every interval (a minute when every is not positive)
// until ctx is done. The caller owns the goroutine that runs it.
func (k *Keyed) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = defaultSweepEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.Sweep(k.now())
		}
	}
}

// Len returns the number of buckets held.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// shardOf is the FNV-1a hash of key reduced to a shard index.
func shardOf(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h & (numShards - 1)
}
