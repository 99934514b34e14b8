package guard

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Conversion in a fleet. Each node judges a range's conversion on its own
// counts (its verifications of the other nodes' sends stand for theirs of
// its own: see conversion.addVerified), which is about the fleet's
// conversion but over a share of its sends, so a pump spread over N nodes
// would need N × min_sends sends to be judged. A range whose conversion
// here looks low once convSuspect of its sends are judged becomes hot: the
// node adds its counts to the fleet's every Sync (its whole window first,
// then what it counted since), reads back the fleet's totals over the
// nodes where the range is hot too (a pumped range is, on every node that
// carries the pump), and judges on those. The table of hot ranges is
// capped (maxHotConversions); a range that finds it full is judged on
// this node's counts.

// convSuspect is the judged sends of a range with a conversion under
// min_rate that make it hot.
const convSuspect = 5

// maxHotConversions caps the hot ranges a node shares (client and carrier
// ranges together): each costs its key and a few dozen bytes, and a Redis
// call per Sync.
const maxHotConversions = 4096

// convEntry is a hot range's counts not yet added to the fleet's, and the
// fleet's figures as of the last Sync.
type convEntry struct {
	carrier          bool // a carrier's range (else a client's)
	counts           []ConversionCount
	judged, verified int // the fleet's
	sent             int // the fleet's sends in the window; 0 after a Sync: forget the entry
	synced           bool
}

// convTable holds the hot ranges.
type convTable struct {
	mu sync.Mutex
	m  map[string]*convEntry
	n  atomic.Int64
}

// ConversionCount is a range's sends in one bucket, and the verifications
// of their codes.
type ConversionCount struct {
	Bucket         int64
	Sent, Verified int
}

// ConversionAdd is one range's counts for SyncConversion.
type ConversionAdd struct {
	// Key is the range: client (or carrier), a zero byte, the country
	// code, '-' and the prefix; Carrier says which.
	Key     string
	Carrier bool
	Counts  []ConversionCount
}

// ConversionWindow is the conversion window at a Sync: its newest bucket,
// its buckets, the newest bucket old enough to be judged (ended grace
// ago), and how long the counts live.
type ConversionWindow struct {
	Bucket     int64
	Steps      int
	LastJudged int64
	TTL        time.Duration
}

// ConversionFigures are a range's figures over the fleet: sends in the
// window, judged sends, and their verifications (at most as many as the
// sends, per bucket).
type ConversionFigures struct {
	Sent, Judged, Verified int
}

// hotConversion, called with the range's lock held, makes c hot when its
// figures look pumped and the table has room, and then returns its window
// to add to the fleet's.
func (g *Guard) hotConversion(c *conversion, judged, verified int, minRate float64) []ConversionCount {
	if c.hot || judged < convSuspect || float64(verified) >= minRate*float64(judged) ||
		g.conv.n.Load() >= maxHotConversions {
		return nil
	}
	c.hot = true
	out := make([]ConversionCount, 0, cSteps)
	for k := int64(cSteps - 1); k >= 0; k-- {
		idx := c.bucket - k
		if s, v := c.sent[ring(idx, cSteps)], c.verified[ring(idx, cSteps)]; s > 0 || v > 0 {
			out = append(out, ConversionCount{Bucket: idx, Sent: int(s), Verified: int(v)})
		}
	}
	return out
}

// addConversion queues counts of the hot range key for the next Sync.
func (g *Guard) addConversion(key []byte, carrier bool, counts ...ConversionCount) {
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	e := g.conv.m[string(key)]
	if e == nil {
		if len(g.conv.m) >= maxHotConversions {
			return
		}
		if g.conv.m == nil {
			g.conv.m = map[string]*convEntry{}
		}
		e = &convEntry{carrier: carrier}
		g.conv.m[string(key)] = e
		g.conv.n.Store(int64(len(g.conv.m)))
	}
	for _, c := range counts {
		i := 0
		for i < len(e.counts) && e.counts[i].Bucket != c.Bucket {
			i++
		}
		if i == len(e.counts) {
			e.counts = append(e.counts, ConversionCount{Bucket: c.Bucket})
		}
		e.counts[i].Sent += c.Sent
		e.counts[i].Verified += c.Verified
	}
}

// fleetConversion returns the figures to judge the range key on: the
// fleet's when the range is hot here and they cover more sends than this
// node's, else this node's.
func (g *Guard) fleetConversion(key []byte, judged, verified int) (int, int) {
	if g.conv.n.Load() == 0 {
		return judged, verified
	}
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	if e := g.conv.m[string(key)]; e != nil && e.synced && e.judged > judged {
		return e.judged, e.verified
	}
	return judged, verified
}

// syncConversion adds the hot ranges' counts to the fleet's and takes
// back the fleet's figures. Ranges whose window the fleet no longer
// counts anything in are forgotten.
func (g *Guard) syncConversion(ctx context.Context, c *compiled, now time.Time) error {
	g.conv.mu.Lock()
	adds := make([]ConversionAdd, 0, len(g.conv.m))
	for k, e := range g.conv.m {
		adds = append(adds, ConversionAdd{Key: k, Carrier: e.carrier, Counts: e.counts})
		e.counts = nil
	}
	g.conv.mu.Unlock()
	if len(adds) == 0 {
		return nil
	}
	at := now.UnixNano()
	w := ConversionWindow{Bucket: at / c.cStep, Steps: cSteps, LastJudged: (at-int64(c.Conversion.Grace))/c.cStep - 1,
		TTL: c.Conversion.Window + time.Duration(c.cStep)}
	figs, err := g.shared.SyncConversion(ctx, w, adds)
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	if err != nil {
		for _, a := range adds { // added at the next Sync
			if e := g.conv.m[a.Key]; e != nil {
				e.counts = append(a.Counts, e.counts...)
			}
		}
		return err
	}
	for i, a := range adds {
		e := g.conv.m[a.Key]
		if e == nil {
			continue
		}
		f := figs[i]
		e.judged, e.verified, e.sent, e.synced = f.Judged, f.Verified, f.Sent, true
		if f.Sent == 0 && len(e.counts) == 0 {
			delete(g.conv.m, a.Key)
		}
	}
	g.conv.n.Store(int64(len(g.conv.m)))
	return nil
}

// forgetConversion forgets the hot ranges drop selects.
func (g *Guard) forgetConversion(drop func(key string, carrier bool) bool) {
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	for k, e := range g.conv.m {
		if drop(k, e.carrier) {
			delete(g.conv.m, k)
		}
	}
	g.conv.n.Store(int64(len(g.conv.m)))
}
