package phone

import (
	"errors"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is returned, wrapped, for anything Parse does not accept: bad
// syntax, a calling code outside the table, or a national number whose
// length is outside the code's range.
var ErrInvalid = errors.New("phone: invalid or unsupported number")

// maxInput is the longest input Parse looks at, in bytes.
const maxInput = 32

// invalidError says why Parse refused a number without repeating the number
// (errors end up in logs, where numbers must be masked).
type invalidError struct{ reason string }

func (e *invalidError) Error() string { return "phone: invalid or unsupported number: " + e.reason }
func (e *invalidError) Unwrap() error { return ErrInvalid }

// Preallocated so that a rejected number costs no allocation.
var (
	errEmpty      = &invalidError{"empty"}
	errTooLong    = &invalidError{"longer than 32 bytes"}
	errNoPlus     = &invalidError{"no leading '+'"}
	errSyntax     = &invalidError{"only digits and one '-' or ' ' after the country code"}
	errUnknownCC  = &invalidError{"country code not supported"}
	errLength     = &invalidError{"national number length out of range"}
	errNoFit      = &invalidError{"no supported country code fits the number"}
	errImpossible = &invalidError{"no such number in the country's numbering plan (libphonenumber)"}
)

// Number is a valid phone number.
type Number struct {
	CC       string // country calling code digits, e.g. "91"
	National string // national significant number digits
	Country  string // ISO 3166 alpha-2, upper case, e.g. "IN"
}

// E164 returns the number's digits in E.164 order without '+', as the SMSC
// gets them: "919876543210".
func (n Number) E164() string { return n.CC + n.National }

// String returns the number in the vendor API's format,
// "+91-9876543210", which Parse accepts back.
func (n Number) String() string { return "+" + n.CC + "-" + n.National }

// Masked returns the number for logs and status bodies with the national
// number hidden except its first two and last two digits: "+91-98******10".
// National numbers shorter than 6 digits keep only the last two, and those
// of 2 digits or fewer are hidden entirely.
func (n Number) Masked() string {
	nat := n.National
	var b strings.Builder
	b.Grow(len(n.CC) + len(nat) + 2)
	b.WriteByte('+')
	b.WriteString(n.CC)
	b.WriteByte('-')
	head, tail := 2, 2
	switch {
	case len(nat) <= 2:
		head, tail = 0, 0
	case len(nat) < 6:
		head = 0
	}
	b.WriteString(nat[:head])
	for range len(nat) - head - tail {
		b.WriteByte('*')
	}
	b.WriteString(nat[len(nat)-tail:])
	return b.String()
}

// Parse reads a number written as "+<cc>-<national>" (the vendor format),
// "+<cc> <national>" or plain E.164 "+<cc><national>", with surrounding white
// space ignored. Inputs longer than 32 bytes are refused. A national (trunk)
// prefix after the calling code is dropped (see callingCode.national). The
// number is valid when its calling code is in the table, libphonenumber
// finds its national significant number's length possible for the code,
// and that length is within the table's range for the code (the union of
// the ranges of all rows that share it). Without a separator the calling code is the longest prefix of
// one to four digits that is in the table and leaves a national number of a
// fitting length.
//
// Country is the table's only country for the code; where countries share a
// code, the one phonenumbers names for the number if it is in the table, else
// the code's main region if in the table, else the code's first row.
//
// Every error wraps ErrInvalid. The returned strings share memory with s.
func Parse(s string) (Number, error) {
	if len(s) > maxInput {
		return Number{}, errTooLong
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Number{}, errEmpty
	}
	if s[0] != '+' {
		return Number{}, errNoPlus
	}
	s = s[1:]
	sep := strings.IndexAny(s, "- ")
	var code *callingCode
	var nat string
	if sep >= 0 {
		cc := s[:sep]
		nat = s[sep+1:]
		if cc == "" || nat == "" || !isDigits(cc) || !isDigits(nat) {
			return Number{}, errSyntax
		}
		var ok bool
		if code, ok = byCC[cc]; !ok {
			return Number{}, errUnknownCC
		}
		if nat, ok = code.national(nat); !ok {
			return Number{}, errImpossible
		}
		if len(nat) < code.min || len(nat) > code.max {
			return Number{}, errLength
		}
	} else {
		if s == "" || !isDigits(s) {
			return Number{}, errSyntax
		}
		for l := min(maxCCLen, len(s)-1); l >= 1; l-- {
			c, ok := byCC[s[:l]]
			if !ok {
				continue
			}
			if n, ok := c.national(s[l:]); ok && len(n) >= c.min && len(n) <= c.max {
				code, nat = c, n
				break
			}
		}
		if code == nil {
			return Number{}, errNoFit
		}
	}
	return Number{CC: code.cc, National: nat, Country: code.country(nat)}, nil
}

// national returns the national significant number of nat, written after
// this calling code, and whether libphonenumber finds such a number
// possible. A national (trunk) prefix written after the calling code,
// once or more ("+44-07700…", "+44-007700…", "+1-1202…"), is dropped, so
// that every spelling of one handset gives one number (and one set of
// limits): of nat and its trunk-stripped suffixes, the shortest whose
// length is possible wins, so a number that itself starts with the trunk
// digit but is no number without it ("+7-800…") is kept whole. A code
// without libphonenumber lengths keeps nat.
func (c *callingCode) national(nat string) (string, bool) {
	if c.possible == nil {
		return nat, true
	}
	best, ok := "", false
	for {
		if slices.Contains(c.possible, len(nat)) {
			best, ok = nat, true
		}
		if c.trunk == "" || !strings.HasPrefix(nat, c.trunk) {
			return best, ok
		}
		nat = nat[len(c.trunk):]
	}
}

// country picks the ISO code of a number with this calling code.
func (c *callingCode) country(nat string) string {
	if len(c.isos) == 1 {
		return c.isos[0]
	}
	pn, err := phonenumbers.Parse("+"+c.cc+nat, "")
	if err != nil {
		return c.fallback
	}
	if r := phonenumbers.GetRegionCodeForNumber(pn); slices.Contains(c.isos, r) {
		return r
	}
	return c.fallback
}
