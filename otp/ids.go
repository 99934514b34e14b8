package otp

import (
	"math/big"
	"strings"
)

// IDForms returns the canonical form of a carrier message id and the forms
// it may take when a carrier switches between hex and decimal. Canonical:
// upper case, leading zeros removed ("0" stays "0"). Alternates: when the id
// is all decimal digits, its value written in hex; when it is all hex digits,
// its value written in decimal. Alternates equal to the canonical form are
// left out. Ids that are neither (UUIDs with dashes, say) have no alternates.
//
// A store indexes a submitted id under canonical and alternates, and looks up
// a receipt's id by its canonical form in both, exact matches first.
func IDForms(id string) (canonical string, alternates []string) {
	s := strings.ToUpper(strings.TrimSpace(id))
	s = strings.TrimLeft(s, "0")
	if s == "" {
		if strings.TrimSpace(id) == "" {
			return "", nil
		}
		return "0", nil
	}
	canonical = s
	if len(s) > 64 {
		return canonical, nil
	}
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
	return canonical, alternates
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
