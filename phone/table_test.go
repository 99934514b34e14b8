package phone_test

import (
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"github.com/otpgate/otpgate/phone"
)

// seedRows is the number of rows of the vendor's supported-countries table
// (its "supported countries" section; see countries.tsv).
const seedRows = 241

func TestCountries_Table(t *testing.T) {
	rows := phone.Countries()
	if len(rows) != seedRows {
		t.Fatalf("got %d rows, want %d (every row of the seed table)", len(rows), seedRows)
	}
	for i, c := range rows {
		if len(c.ISO) != 2 || c.ISO[0] < 'A' || c.ISO[0] > 'Z' || c.ISO[1] < 'A' || c.ISO[1] > 'Z' {
			t.Errorf("row %d: ISO %q is not 2 upper-case letters", i, c.ISO)
		}
		if n, err := strconv.Atoi(c.CC); err != nil || n <= 0 || len(c.CC) > 4 || c.CC[0] == '0' {
			t.Errorf("row %d (%s): calling code %q is not 1 to 4 digits", i, c.ISO, c.CC)
		}
		if c.Min < 1 || c.Min > c.Max {
			t.Errorf("row %d (%s): range %d to %d", i, c.ISO, c.Min, c.Max)
		}
		if c.Name == "" || c.Name[0] < 'A' || c.Name[0] > 'Z' {
			t.Errorf("row %d (%s): name %q not capitalised", i, c.ISO, c.Name)
		}
	}
}

func TestCountries_Copy(t *testing.T) {
	a := phone.Countries()
	a[0].CC = "999"
	if b := phone.Countries(); b[0].CC == "999" {
		t.Fatalf("got a shared slice, want a copy")
	}
}

func TestCountries_SpotChecks(t *testing.T) {
	want := map[string][]phone.Country{ // every row of these ISO codes, in order
		"AF": {{ISO: "AF", Name: "Afghanistan", CC: "93", Min: 9, Max: 10}},
		"AT": {{ISO: "AT", Name: "Austria", CC: "43", Min: 9, Max: 13}},
		"IN": {{ISO: "IN", Name: "India", CC: "91", Min: 10, Max: 12}},
		"US": {{ISO: "US", Name: "United States", CC: "1", Min: 10, Max: 10}},
		"GB": {{ISO: "GB", Name: "United Kingdom", CC: "44", Min: 10, Max: 12}},
		"CN": {{ISO: "CN", Name: "China", CC: "86", Min: 11, Max: 11}},
		"GW": {{ISO: "GW", Name: "Guinea-Bissau", CC: "245", Min: 7, Max: 7}},
		"TL": {{ISO: "TL", Name: "Timor-Leste", CC: "670", Min: 7, Max: 8}},
		"VI": {{ISO: "VI", Name: "Virgin Islands (U.S.)", CC: "1", Min: 10, Max: 10}},
		"PN": {{ISO: "PN", Name: "Pitcairn", CC: "872", Min: 4, Max: 5}},
		"VA": {{ISO: "VA", Name: "Holy See (Vatican City)", CC: "379", Min: 10, Max: 11}},
		"NF": {{ISO: "NF", Name: "Norfolk Island", CC: "6723", Min: 6, Max: 6}},
		"NU": {{ISO: "NU", Name: "Niue", CC: "683", Min: 4, Max: 4}},
		"ZW": {{ISO: "ZW", Name: "Zimbabwe", CC: "263", Min: 9, Max: 10}},
		"RS": {
			{ISO: "RS", Name: "Republic of Serbia", CC: "381", Min: 8, Max: 12}, // repaired "8 12"
			{ISO: "RS", Name: "Serbia", CC: "381", Min: 8, Max: 10},
		},
		"CI": {
			{ISO: "CI", Name: "Côte d'Ivoire", CC: "225", Min: 8, Max: 10},
			{ISO: "CI", Name: "Ivory Coast (Côte d'Ivoire)", CC: "225", Min: 8, Max: 9},
		},
		"VC": {
			{ISO: "VC", Name: "Saint Vincent and the Grenadines", CC: "1", Min: 10, Max: 10},
			{ISO: "VC", Name: "St Vincent & Grenadines", CC: "783", Min: 7, Max: 7},
		},
		"VG": {
			{ISO: "VG", Name: "British Virgin Islands", CC: "1", Min: 10, Max: 10},
			{ISO: "VG", Name: "Virgin Islands (British)", CC: "1", Min: 10, Max: 10},
		},
	}
	got := map[string][]phone.Country{}
	for _, c := range phone.Countries() {
		got[c.ISO] = append(got[c.ISO], c)
	}
	for iso, w := range want {
		g := got[iso]
		if len(g) != len(w) {
			t.Errorf("%s: got %d rows %v, want %v", iso, len(g), g, w)
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s row %d: got %+v, want %+v", iso, i, g[i], w[i])
			}
		}
	}
	// Distinct ISO codes: 241 rows less the 4 listed twice.
	if len(got) != seedRows-4 {
		t.Errorf("got %d distinct ISO codes, want %d", len(got), seedRows-4)
	}
}

func TestCountryByISO(t *testing.T) {
	for _, tc := range []struct {
		iso, wantName string
		ok            bool
	}{
		{"IN", "India", true},
		{"in", "India", true},
		{"RS", "Republic of Serbia", true}, // first row wins
		{"VC", "Saint Vincent and the Grenadines", true},
		{"ZZ", "", false},
		{"", "", false},
		{"IND", "", false},
	} {
		c, ok := phone.CountryByISO(tc.iso)
		if ok != tc.ok || c.Name != tc.wantName {
			t.Errorf("CountryByISO(%q): got %q, %v, want %q, %v", tc.iso, c.Name, ok, tc.wantName, tc.ok)
		}
	}
}

// TestCountries_Libphonenumber cross-checks each row's calling code against
// Google's data, so a capture error in a code or an ISO letter shows up. The
// exceptions are the vendor's own odd rows, kept as given (see countries.tsv).
func TestCountries_Libphonenumber(t *testing.T) {
	odd := map[string]bool{"VC/783": true, "PN/872": true, "VA/379": true, "NF/6723": true}
	for _, c := range phone.Countries() {
		if odd[c.ISO+"/"+c.CC] {
			continue
		}
		if got := phonenumbers.GetCountryCodeForRegion(c.ISO); strconv.Itoa(got) != c.CC {
			t.Errorf("%s (%s): libphonenumber code %d, table %s", c.ISO, c.Name, got, c.CC)
		}
	}
}
