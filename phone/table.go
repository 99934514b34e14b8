package phone

import (
	"bufio"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

//go:embed countries.tsv
var countriesTSV string

// Country is one row of the supported-countries table.
type Country struct {
	ISO  string // ISO 3166 alpha-2, upper case, e.g. "IN"
	Name string // English name as the vendor gave it, capitalised
	CC   string // country calling code digits, e.g. "91"
	Min  int    // shortest national significant number, in digits
	Max  int    // longest national significant number, in digits
}

// callingCode is what Parse needs to know about one calling code: the merged
// length range of its rows and how to pick the country of a number.
type callingCode struct {
	cc       string   // digits, e.g. "44"
	ccInt    int      // cc as a number, for phonenumbers
	min, max int      // union of the rows' ranges
	isos     []string // distinct ISO codes of the rows, in table order
	fallback string   // country when phonenumbers names none of isos
	// From libphonenumber's metadata for the code's regions (none for a
	// code it does not know): the national (trunk) prefix, e.g. "0", and
	// the national significant number lengths it finds possible.
	trunk    string
	possible []int
}

// maxCCLen is the longest calling code in the table ("6723").
const maxCCLen = 4

var (
	countries []Country               // every row, in table order
	byISO     map[string]Country      // first row of each ISO code
	byCC      map[string]*callingCode // every calling code of the table
)

func init() {
	rows, err := parseTable(countriesTSV)
	if err != nil {
		// The table is compiled in and checked by the tests; a broken one
		// is a build defect, like a bad regexp.MustCompile pattern.
		panic(err)
	}
	countries = rows
	byISO = make(map[string]Country, len(rows))
	byCC = make(map[string]*callingCode)
	for _, c := range rows {
		if _, ok := byISO[c.ISO]; !ok {
			byISO[c.ISO] = c
		}
		code, ok := byCC[c.CC]
		if !ok {
			n, _ := strconv.Atoi(c.CC) // parseTable checked the digits
			code = &callingCode{cc: c.CC, ccInt: n, min: c.Min, max: c.Max}
			byCC[c.CC] = code
		}
		code.min = min(code.min, c.Min)
		code.max = max(code.max, c.Max)
		if !slices.Contains(code.isos, c.ISO) {
			code.isos = append(code.isos, c.ISO)
		}
	}
	if err := loadLibphonenumber(); err != nil {
		panic(err) // compiled-in metadata: a broken one is a build defect
	}
	for _, code := range byCC {
		// Where no length of the table's range is possible for
		// libphonenumber (+236, +378, +675 today), the table decides: it
		// says which countries are served.
		if !slices.ContainsFunc(code.possible, func(l int) bool { return l >= code.min && l <= code.max }) {
			code.possible = nil
		}
	}
	for _, code := range byCC {
		code.fallback = code.isos[0]
		if len(code.isos) > 1 {
			if r := phonenumbers.GetRegionCodeForCountryCode(code.ccInt); slices.Contains(code.isos, r) {
				code.fallback = r
			}
		}
	}
}

// loadLibphonenumber adds each calling code's trunk prefix and possible
// lengths from libphonenumber's metadata: the union of its regions'
// lengths, and the main region's national prefix (the first region's when
// none is marked main).
func loadLibphonenumber() error {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return fmt.Errorf("phone: libphonenumber metadata: %w", err)
	}
	seen := map[string]bool{}
	for _, md := range coll.GetMetadata() {
		code, ok := byCC[strconv.Itoa(int(md.GetCountryCode()))]
		if !ok {
			continue
		}
		if np := md.GetNationalPrefix(); np != "" && isDigits(np) && (!seen[code.cc] || md.GetMainCountryForCode()) {
			code.trunk = np
		}
		seen[code.cc] = true
		for _, l := range md.GetGeneralDesc().GetPossibleLength() {
			if !slices.Contains(code.possible, int(l)) {
				code.possible = append(code.possible, int(l))
			}
		}
	}
	return nil
}

// parseTable reads the tab-separated table: ISO, calling code, min, max,
// name; blank lines and lines starting with '#' are comments.
func parseTable(text string) ([]Country, error) {
	var rows []Country
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("phone: countries.tsv line %d: %d fields, want 5", line, len(f))
		}
		c := Country{ISO: f[0], CC: f[1], Name: f[4]}
		if len(c.ISO) != 2 || !isUpper(c.ISO) {
			return nil, fmt.Errorf("phone: countries.tsv line %d: bad ISO code %q", line, c.ISO)
		}
		if len(c.CC) < 1 || len(c.CC) > maxCCLen || !isDigits(c.CC) || c.CC[0] == '0' {
			return nil, fmt.Errorf("phone: countries.tsv line %d: bad calling code %q", line, c.CC)
		}
		var err1, err2 error
		c.Min, err1 = strconv.Atoi(f[2])
		c.Max, err2 = strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || c.Min < 1 || c.Min > c.Max || len(c.CC)+c.Max > 17 {
			return nil, fmt.Errorf("phone: countries.tsv line %d: bad length range %q to %q", line, f[2], f[3])
		}
		if c.Name == "" {
			return nil, fmt.Errorf("phone: countries.tsv line %d: empty name", line)
		}
		rows = append(rows, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("phone: countries.tsv: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("phone: countries.tsv: no rows")
	}
	return rows, nil
}

// Countries returns every row of the supported-countries table in the
// vendor's order. Some ISO codes appear on more than one row (the vendor
// lists CI, RS, VC and VG twice). The slice is a copy the caller may keep.
func Countries() []Country {
	return slices.Clone(countries)
}

// CountryByISO returns the first table row for the ISO 3166 alpha-2 code iso
// (either case), and false when the table has no such country.
func CountryByISO(iso string) (Country, bool) {
	c, ok := byISO[iso]
	if !ok && len(iso) == 2 {
		c, ok = byISO[strings.ToUpper(iso)]
	}
	return c, ok
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
