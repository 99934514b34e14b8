package smpp

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// recentIDWindow is how long a carrier's sessions remember the message ids
// its submit_sm_resps returned: between one and two windows. Being
// remembered matters only between a submit's response and its message's
// index write (SaveSend), which takes milliseconds, seconds when the store
// stalls; after that the exact entry is found first anyway.
const recentIDWindow = 5 * time.Second

// baseEvidence is how many of the latest unambiguous receipts recentIDs
// weighs to tell whether a carrier writes receipts in its submits' base.
const baseEvidence = 64

// recentIDs remembers the message ids (by a hash of their canonical form,
// otp.IDForms) that a carrier's submit_sm_resps returned in this process
// lately, so that a receipt of such an id is marked otp.Receipt.Exact.
//
// Why: a store matches a receipt under the id's alternate forms too (a
// carrier that writes receipts in the other base), and takes such a match
// unless the part found has its final state. A receipt that comes before
// its own message's index is written would so go to an older message whose
// id spells the same in the other base ("16" is hex 0x16, and decimal 16 is
// hex "10"), and its own message would never learn its state. An id this
// process has just been given is known to be exact: no guess for it.
//
// But a receipt's id can spell one recent id in its own base and another
// in the other base (a carrier writing decimal receipts for hex ids: 0x10's
// receipt reads "16", and 0x16 may have been sent too). Such a receipt is
// marked only when the carrier's recent unambiguous receipts (in the set
// under one reading only) were mostly in the submits' base.
//
// The session reader adds an id as it reads the response, before it reads
// anything after it, so a receipt on the same transceiver session finds
// it. Not marked, and matched as before: a receipt that comes before its
// submit's response, one on a receiver bind read before the transmitter's
// reader got to the response, and one on another node of a fleet.
type recentIDs struct {
	seed maphash.Seed

	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	since     time.Time // when cur began
	base      uint64    // latest unambiguous receipts, newest in bit 0: 1 = in the submits' base
	seen      int       // how many bits of base are filled, up to baseEvidence
}

func newRecentIDs() *recentIDs {
	return &recentIDs{seed: maphash.MakeSeed(), cur: map[uint64]struct{}{}, prev: map[uint64]struct{}{}}
}

// rotate moves cur to prev once a window has passed; callers hold mu.
// The maps are cleared rather than replaced, so that their room is
// reused.
func (r *recentIDs) rotate(now time.Time) {
	switch age := now.Sub(r.since); {
	case age >= 2*recentIDWindow:
		clear(r.cur)
		clear(r.prev)
		r.since = now
	case age >= recentIDWindow:
		clear(r.prev)
		r.prev, r.cur = r.cur, r.prev
		r.since = now
	}
}

// add remembers id. A nil r does nothing.
func (r *recentIDs) add(id string, now time.Time) {
	k, ok := r.key(id)
	if !ok {
		return
	}
	r.mu.Lock()
	r.rotate(now)
	r.cur[k] = struct{}{}
	r.mu.Unlock()
}

// holds reports whether k was added within the last window or two;
// callers hold mu.
func (r *recentIDs) holds(k uint64) bool {
	if _, found := r.cur[k]; found {
		return true
	}
	_, found := r.prev[k]
	return found
}

// exact reports whether a receipt of id is to be matched only exactly:
// its canonical form was returned to a submit lately, and none of its
// alternate forms was, or the carrier's latest unambiguous receipts were
// at least three in four in the submits' base. A nil r says no.
func (r *recentIDs) exact(id string, now time.Time) bool {
	if r == nil {
		return false
	}
	forms, n := otp.IDFormList(id)
	if n == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotate(now)
	own, other := r.holds(maphash.String(r.seed, forms[0])), false
	for _, f := range forms[1:n] {
		other = other || r.holds(maphash.String(r.seed, f))
	}
	switch {
	case own && other:
		return r.seen >= baseEvidence/8 && 4*bits.OnesCount64(r.base) >= 3*r.seen
	case own:
		r.learn(true)
		return true
	case other:
		r.learn(false)
	}
	return false
}

// learn records an unambiguous receipt; callers hold mu.
func (r *recentIDs) learn(sameBase bool) {
	r.base <<= 1
	if sameBase {
		r.base |= 1
	}
	r.seen = min(r.seen+1, baseEvidence)
}

// key hashes the canonical form of id (otp.CanonicalID, allocating nothing
// for the upper-case ids carriers use); false for a nil r or an empty id.
func (r *recentIDs) key(id string) (uint64, bool) {
	if r == nil {
		return 0, false
	}
	c := otp.CanonicalID(id)
	return maphash.String(r.seed, c), c != ""
}
