package guard

import (
	"slices"
	"strings"
)

// prefixSet is a list of E.164 digit prefixes, matched by its longest
// entry that starts a number. Lookups cost one map probe per distinct
// prefix length in the list.
type prefixSet struct {
	set     map[string]string // digits -> the entry as configured
	lengths []int             // distinct lengths, longest first
}

// newPrefixSet compiles entries (already checked with ParsePrefix).
func newPrefixSet(entries []string) prefixSet {
	p := prefixSet{set: map[string]string{}}
	for _, e := range entries {
		d, err := ParsePrefix(e)
		if err != nil {
			continue
		}
		p.set[d] = strings.TrimSpace(e)
		if !slices.Contains(p.lengths, len(d)) {
			p.lengths = append(p.lengths, len(d))
		}
	}
	slices.Sort(p.lengths)
	slices.Reverse(p.lengths)
	return p
}

// match returns the length of the longest entry that e164 (digits) starts
// with, and that entry; 0 when none does.
func (p prefixSet) match(e164 []byte) (int, string) {
	for _, l := range p.lengths {
		if l <= len(e164) {
			if e, ok := p.set[string(e164[:l])]; ok {
				return l, e
			}
		}
	}
	return 0, ""
}

// covers reports whether some entry starts every number of the range
// whose digits are rng.
func (p prefixSet) covers(rng string) bool {
	for _, l := range p.lengths {
		if l <= len(rng) {
			if _, ok := p.set[rng[:l]]; ok {
				return true
			}
		}
	}
	return false
}
