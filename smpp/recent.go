package smpp

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// recentIDWindow is how long a carrier's sessions remember the message ids
// its submit_sm_resps returned: between one and two windows. It covers the
// moments between a submit's response and its message's index write
// (SaveSend), with room to spare: a send gives up long before.
const recentIDWindow = 15 * time.Second

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
// The session reader adds an id as it reads the response, before it reads
// anything after it, so a receipt on the same session always finds it. A
// receipt on another node of a fleet (the account's binds spread over
// nodes) is not marked, and is matched as before.
type recentIDs struct {
	seed maphash.Seed

	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	since     time.Time // when cur began
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

// has reports whether id (in any spelling of its canonical form) was
// added within the last window or two. A nil r has nothing.
func (r *recentIDs) has(id string, now time.Time) bool {
	k, ok := r.key(id)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotate(now)
	if _, found := r.cur[k]; found {
		return true
	}
	_, found := r.prev[k]
	return found
}

// forget drops id: its final receipt is stored. A nil r does nothing.
func (r *recentIDs) forget(id string) {
	k, ok := r.key(id)
	if !ok {
		return
	}
	r.mu.Lock()
	delete(r.cur, k)
	delete(r.prev, k)
	r.mu.Unlock()
}

// key hashes the canonical form of id (otp.IDForms) without allocating
// for the ids carriers use (ASCII, at most 64 characters); false for a nil
// r or an empty id.
func (r *recentIDs) key(id string) (uint64, bool) {
	if r == nil {
		return 0, false
	}
	for i := 0; i < len(id); i++ {
		if id[i] >= 0x80 { // Unicode spaces and case: IDForms's own rules
			c, _ := otp.IDForms(id)
			return maphash.String(r.seed, c), c != ""
		}
	}
	s := strings.TrimSpace(id)
	if s == "" {
		return 0, false
	}
	if s = strings.TrimLeft(s, "0"); s == "" {
		s = "0"
	}
	var buf [64]byte
	if len(s) > len(buf) {
		c, _ := otp.IDForms(id)
		return maphash.String(r.seed, c), true
	}
	b := buf[:copy(buf[:], s)]
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return maphash.Bytes(r.seed, b), true
}
