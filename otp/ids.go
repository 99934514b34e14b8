package otp

import (
	"math/big"
	"strconv"
	"strings"
)

// IDForms returns the canonical form of a carrier message id and the forms
// it may take when a carrier switches between hex and decimal. Canonical:
// upper case, leading zeros removed ("0" stays "0"). Alternates: when the id
// is all decimal digits, its value written in hex; when it is all hex digits,
// its value written in decimal. Alternates equal to the canonical form are
// left out. Ids that are neither (UUIDs with dashes, say) have no alternates.
//
// A store matches a receipt's id to a submitted id by their canonical forms
// first, then through the alternates.
func IDForms(id string) (canonical string, alternates []string) {
	s := CanonicalID(id)
	if s == "" || s == "0" {
		return s, nil
	}
	canonical = s
	if len(s) > 64 {
		return canonical, nil
	}
	if alternates, ok := smallIDForms(s); ok {
		return canonical, alternates
	}
	return canonical, bigIDForms(s)
}

// CanonicalID is IDForms's canonical form alone: upper case, leading zeros
// removed ("0" stays "0"), "" for a blank id. It allocates nothing for an
// id already in upper case.
func CanonicalID(id string) string {
	t := strings.TrimSpace(id)
	if t == "" {
		return ""
	}
	if s := strings.TrimLeft(strings.ToUpper(t), "0"); s != "" {
		return s
	}
	return "0"
}

// IDFormList is IDForms as one list, canonical first: forms[:n], n 0 for
// an empty id. It is an array, not a slice, so that a caller ranging over
// the forms allocates nothing for the list (IDForms has at most two
// alternates).
func IDFormList(id string) (forms [3]string, n int) {
	canonical, alternates := IDForms(id)
	if canonical == "" {
		return forms, 0
	}
	forms[0] = canonical
	return forms, 1 + copy(forms[1:], alternates)
}

// bigIDForms computes IDForms's alternates of canonical s with big.Int:
// any length, several allocations. smallIDForms is the fast path.
func bigIDForms(s string) (alternates []string) {
	var v big.Int
	if isDigits(s, false) {
		v.SetString(s, 10)
		if h := strings.ToUpper(v.Text(16)); h != s {
			alternates = append(alternates, h)
		}
	}
	if isDigits(s, true) {
		v.SetString(s, 16)
		if d := v.Text(10); d != s {
			alternates = append(alternates, d)
		}
	}
	return alternates
}

// smallIDForms computes IDForms's alternates of canonical s with machine
// integers when s fits in 64 bits (at most 19 decimal or 16 hex digits,
// which is every id carriers hand out in practice): big.Int allocated
// several times per call, and IDForms runs twice per send and once per
// receipt. ok is false when s is too long for it.
func smallIDForms(s string) (alternates []string, ok bool) {
	dec, hex := isDigits(s, false), isDigits(s, true)
	if (dec && len(s) > 19) || (hex && len(s) > 16) {
		return nil, false
	}
	if dec {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, false
		}
		if h := strings.ToUpper(strconv.FormatUint(v, 16)); h != s {
			alternates = append(make([]string, 0, 2), h)
		}
	}
	if hex {
		v, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			return nil, false
		}
		if d := strconv.FormatUint(v, 10); d != s {
			alternates = append(alternates, d)
		}
	}
	return alternates, true
}

func isDigits(s string, hex bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case hex && c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
