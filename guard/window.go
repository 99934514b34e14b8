package guard

import (
	"math"
	"time"
)

// Steps of the sliding windows: a window of W is counted in steps of
// W/vSteps (velocity) or W/cSteps (conversion), so that its count slides
// by a step at a time.
const (
	vSteps  = 6
	cSteps  = 16
	recentN = 16 // numbers per range remembered for the consecutive test
)

// ring is idx's place in a ring of n buckets, for any idx (times before
// 1970 included).
func ring(idx, n int64) int64 {
	m := idx % n
	if m < 0 {
		m += n
	}
	return m
}

// velocity is a range's send counts over the velocity window, the last
// numbers sent to it and its baseline. 152 bytes.
type velocity struct {
	step    int64 // nanoseconds per bucket; a change (reload) starts over
	bucket  int64 // index (time/step) of the newest bucket
	sends   [vSteps]uint32
	seq     [vSteps]uint32 // sends to a distinct number near a recent one
	recent  [recentN]uint32
	nrecent uint8
	pos     uint8
	// hot: the fleet counts this range's sends (shared state only; see
	// fleetVelocity); it cools down when the window empties.
	hot    bool
	rate   float64 // exponentially weighted sends per second
	rateAt int64   // when rate was last updated, unix nanoseconds
}

// advance moves the window to now, dropping the buckets that left it.
func (v *velocity) advance(now, step int64) {
	idx := now / step
	if v.step != step || idx-v.bucket >= vSteps {
		v.sends, v.seq = [vSteps]uint32{}, [vSteps]uint32{}
		if v.step != step || idx-v.bucket >= 2*vSteps {
			v.nrecent = 0 // nothing sent for two windows: no recent number
		}
		v.hot = false
		v.step, v.bucket = step, idx
		return
	}
	for v.bucket < idx {
		v.bucket++
		v.sends[ring(v.bucket, vSteps)], v.seq[ring(v.bucket, vSteps)] = 0, 0
	}
}

// add counts a send to the number whose suffix within the range is n at
// now, and reports whether it looked consecutive: a number other than the
// recent ones, within gap of one of them.
func (v *velocity) add(now, step int64, n uint32, gap int, tau time.Duration) (seq bool) {
	v.advance(now, step)
	distinct := true
	for i := range int(v.nrecent) {
		r := v.recent[i]
		if r == n {
			distinct = false
			seq = false
			break
		}
		if d := int64(r) - int64(n); d != 0 && d >= -int64(gap) && d <= int64(gap) {
			seq = true
		}
	}
	b := ring(v.bucket, vSteps)
	v.sends[b]++
	if seq {
		v.seq[b]++
	}
	if distinct {
		v.recent[v.pos] = n
		v.pos = (v.pos + 1) % recentN
		if v.nrecent < recentN {
			v.nrecent++
		}
	}
	// rate = rate*e^(-dt/tau) + 1/tau: each send adds 1/tau, which decays.
	if v.rateAt != 0 && now > v.rateAt {
		v.rate *= math.Exp(-float64(now-v.rateAt) / float64(tau))
	}
	v.rate += 1 / tau.Seconds()
	v.rateAt = max(v.rateAt, now)
	return seq
}

// undo takes back a send counted at at (seq as add returned), when it did
// not go out.
func (v *velocity) undo(at, step int64, seq bool, tau time.Duration) {
	idx := at / step
	if v.step != step || idx > v.bucket || v.bucket-idx >= vSteps {
		return
	}
	b := ring(idx, vSteps)
	if v.sends[b] > 0 {
		v.sends[b]--
	}
	if seq && v.seq[b] > 0 {
		v.seq[b]--
	}
	v.rate = max(0, v.rate-1/tau.Seconds())
}

// totals returns the sends and the consecutive-looking sends in the window.
func (v *velocity) totals(now, step int64) (sends, seq int) {
	v.advance(now, step)
	for i := range vSteps {
		sends += int(v.sends[i])
		seq += int(v.seq[i])
	}
	return sends, seq
}

// counts appends the buckets of the window with sends, oldest first.
func (v *velocity) counts(out []VelocityCount) []VelocityCount {
	for k := int64(vSteps - 1); k >= 0; k-- {
		idx := v.bucket - k
		if n := v.sends[ring(idx, vSteps)]; n > 0 {
			out = append(out, VelocityCount{Bucket: idx, Sends: int(n), Seq: int(v.seq[ring(idx, vSteps)])})
		}
	}
	return out
}

// baseline is the range's average sends per window.
func (v *velocity) baseline(window time.Duration) float64 { return v.rate * window.Seconds() }

// conversion counts a range's sends and, by the bucket of their send, the
// verifications of their codes. 152 bytes.
type conversion struct {
	step     int64
	bucket   int64
	sent     [cSteps]uint32
	verified [cSteps]uint32
	hot      bool // the fleet counts it (see fleetconv.go); a reset cools it
}

func (c *conversion) advance(now, step int64) {
	idx := now / step
	if c.step != step || idx-c.bucket >= cSteps {
		*c = conversion{step: step, bucket: idx}
		return
	}
	for c.bucket < idx {
		c.bucket++
		c.sent[ring(c.bucket, cSteps)], c.verified[ring(c.bucket, cSteps)] = 0, 0
	}
}

// slot returns the bucket of t once the window is at now, or -1 when t is
// outside the window.
func (c *conversion) slot(t, now, step int64) int {
	c.advance(now, step)
	idx := t / step
	if idx > c.bucket || c.bucket-idx >= cSteps {
		return -1
	}
	return int(ring(idx, cSteps))
}

// addSent counts a send made at t, unless t is outside the window.
func (c *conversion) addSent(t, now, step int64) bool {
	if i := c.slot(t, now, step); i >= 0 {
		c.sent[i]++
		return true
	}
	return false
}

// addVerified counts the verification of a code sent at sentAt. A bucket
// may count more verifications than sends (judged caps them): in a fleet
// a code sent through one node is often verified through another, and a
// node's verifications of the others' sends stand for the others'
// verifications of its own, so that each node's conversion is about the
// fleet's.
func (c *conversion) addVerified(sentAt, now, step int64) bool {
	if i := c.slot(sentAt, now, step); i >= 0 && c.verified[i] < math.MaxUint32 {
		c.verified[i]++
		return true
	}
	return false
}

// judged returns the sends of the buckets that ended at least grace
// before now, and how many of them were verified.
func (c *conversion) judged(now, step, grace int64) (sent, verified int) {
	c.advance(now, step)
	for k := range int64(cSteps) {
		idx := c.bucket - k
		if (idx+1)*step > now-grace {
			continue
		}
		s := c.sent[ring(idx, cSteps)]
		sent += int(s)
		verified += int(min(c.verified[ring(idx, cSteps)], s))
	}
	return sent, verified
}
