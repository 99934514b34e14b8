package phone_test

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"

	"github.com/otpgate/otpgate/phone"
)

// codeRange is a calling code's merged range: the union of its rows' ranges.
type codeRange struct{ min, max int }

func mergedRanges(tb testing.TB) map[string]codeRange {
	tb.Helper()
	m := map[string]codeRange{}
	for _, c := range phone.Countries() {
		r, ok := m[c.CC]
		if !ok {
			r = codeRange{c.Min, c.Max}
		}
		m[c.CC] = codeRange{min(r.min, c.Min), max(r.max, c.Max)}
	}
	return m
}

// digits returns a national number of n digits that starts with 5, so that
// no longer calling code absorbs its first digits in plain E.164.
func digits(n int) string {
	return "5" + strings.Repeat("0", n-1)
}

// possibleLen is the test's oracle for libphonenumber's rule: whether it
// finds a national significant number of n digits possible for the calling
// code cc (true for a code it does not know), by its own API: the code's
// main region's lengths.
func possibleLen(cc string, n int) bool {
	code, _ := strconv.Atoi(cc)
	switch {
	case phonenumbers.GetRegionCodeForCountryCode(code) == phonenumbers.UNKNOWN_REGION:
		return true
	case cc == "236" || cc == "378" || cc == "675":
		return true // no length of the table's range is possible: the table decides
	}
	nat, _ := strconv.ParseUint(digits(n), 10, 64)
	pn := &phonenumbers.PhoneNumber{CountryCode: proto.Int32(int32(code)), NationalNumber: proto.Uint64(nat)}
	return phonenumbers.IsPossibleNumber(pn)
}

// TestParse_EveryCode: every calling code of the table takes the lengths
// in its range that libphonenumber finds possible, in the three formats,
// and refuses the others.
func TestParse_EveryCode(t *testing.T) {
	ranges := mergedRanges(t)
	if len(ranges) < 200 {
		t.Fatalf("got %d calling codes, want over 200", len(ranges))
	}
	var unservable []string // must stay empty: the table decides which countries are served
	for cc, r := range ranges {
		served := false
		for n := r.min - 1; n <= r.max+1; n++ {
			nat := digits(n)
			if n < r.min || n > r.max || !possibleLen(cc, n) {
				s := "+" + cc + "-" + nat
				if got, err := phone.Parse(s); !errors.Is(err, phone.ErrInvalid) {
					t.Errorf("Parse(%q): got %+v, %v, want ErrInvalid", s, got, err)
				}
				continue
			}
			served = true
			for _, s := range []string{"+" + cc + "-" + nat, "+" + cc + " " + nat, "+" + cc + nat} {
				got, err := phone.Parse(s)
				if err != nil {
					t.Errorf("Parse(%q): %v, want ok", s, err)
					continue
				}
				if got.CC != cc || got.National != nat {
					t.Errorf("Parse(%q): got CC %q national %q, want %q %q", s, got.CC, got.National, cc, nat)
				}
				if _, ok := phone.CountryByISO(got.Country); !ok {
					t.Errorf("Parse(%q): country %q not in the table", s, got.Country)
				}
			}
		}
		if !served {
			unservable = append(unservable, cc)
		}
	}
	if len(unservable) > 0 {
		t.Errorf("calling codes the table serves that take no number: %v", unservable)
	}
}

// TestParse_OneHandsetOneNumber: a trunk prefix written after the calling
// code, once or twice, gives the same number, so limits and records are
// keyed once per handset; a number that itself starts with the trunk digit
// is kept whole.
func TestParse_OneHandsetOneNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+44-7700900123", "447700900123"},
		{"+44-07700900123", "447700900123"},
		{"+44-007700900123", "447700900123"},
		{"+4407700900123", "447700900123"},
		{"+44 07700900123", "447700900123"},
		{"+91-09876543210", "919876543210"},
		{"+1-19907676111", "19907676111"},
		{"+7-89161234567", "79161234567"},  // Russia's trunk prefix is 8
		{"+7-8001234567", "78001234567"},   // a number starting with 8 keeps it
		{"+39-0612345678", "390612345678"}, // Italy has no trunk prefix: the 0 is the number's
	} {
		got, err := phone.Parse(tc.in)
		if err != nil || got.E164() != tc.want {
			t.Errorf("Parse(%q): got %q, %v, want %q", tc.in, got.E164(), err, tc.want)
		}
	}
	for _, in := range []string{"+44-0770090012345", "+44-12", "+91-98765432"} {
		if got, err := phone.Parse(in); !errors.Is(err, phone.ErrInvalid) {
			t.Errorf("Parse(%q): got %+v, %v, want ErrInvalid (impossible for libphonenumber)", in, got, err)
		}
	}
}

// TestParse_SharedRanges pins the merged ranges of codes the vendor lists
// more than once, where the union widens some rows' own range.
func TestParse_SharedRanges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // E164, "" for invalid
	}{
		{"+7-7012345678", "77012345678"},         // KZ row is 10 only
		{"+7-70123456789", ""},                   // 11 is RU's max in the table, but libphonenumber knows 10 and 14 only
		{"+61-891621234123", "61891621234123"},   // CC's 12
		{"+381-123456789012", "381123456789012"}, // repaired 8 to 12
		{"+381-1234567890123", ""},
		{"+225-1234567890", "2251234567890"}, // Côte d'Ivoire's 10 beats Ivory Coast's 9
		{"+47-123456789012", ""},             // in the table's range, impossible for libphonenumber
		{"+1-12345678901", "12345678901"},    // the trunk prefix 1 dropped: +1-2345678901
		{"+1-22345678901", ""},
	} {
		got, err := phone.Parse(tc.in)
		if tc.want == "" {
			if !errors.Is(err, phone.ErrInvalid) {
				t.Errorf("Parse(%q): got %+v, %v, want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.E164() != tc.want {
			t.Errorf("Parse(%q): got %q, %v, want %q", tc.in, got.E164(), err, tc.want)
		}
	}
}

func TestParse_Formats(t *testing.T) {
	in := phone.Number{CC: "91", National: "9876543210", Country: "IN"}
	for _, tc := range []struct {
		name, in string
		want     phone.Number
	}{
		{"Dash", "+91-9876543210", in},
		{"Space", "+91 9876543210", in},
		{"E164", "+919876543210", in},
		{"Trimmed", " \t+91-9876543210\n", in},
		{"VendorExample", "+1-9907676111", phone.Number{CC: "1", National: "9907676111", Country: "US"}},
		{"FourDigitCode", "+6723-123456", phone.Number{CC: "6723", National: "123456", Country: "NF"}},
		{"FourDigitCodeE164", "+6723123456", phone.Number{CC: "6723", National: "123456", Country: "NF"}},
		{"ShortestNational", "+683-1234", phone.Number{CC: "683", National: "1234", Country: "NU"}},
		{"LongestNational", "+43-1234567890123", phone.Number{CC: "43", National: "1234567890123", Country: "AT"}},
		{"VendorOddCode", "+783-1234567", phone.Number{CC: "783", National: "1234567", Country: "VC"}},
		{"TrunkPrefixDropped", "+44-07400123456", phone.Number{CC: "44", National: "7400123456", Country: "GB"}},
		// Plain E.164 takes the longest known code whose range fits: +35 is
		// no code, +351 (Portugal, 9 digits) is.
		{"LongestPrefix", "+351912345678", phone.Number{CC: "351", National: "912345678", Country: "PT"}},
		// +6172, +617 are no codes; +61 takes the 9 digits left.
		{"ShorterPrefixFits", "+61723123456", phone.Number{CC: "61", National: "723123456", Country: "AU"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := phone.Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("Parse(%q): got %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParse_Invalid(t *testing.T) {
	for _, in := range []string{
		"",
		"   ",
		"+",
		"+-",
		"+ ",
		"919876543210",                    // no '+'
		"0091-9876543210",                 // no '+'
		"++91-9876543210",                 //
		"+91--9876543210",                 // two separators
		"+91- 9876543210",                 //
		"+91 -9876543210",                 //
		"+91-98765-43210",                 // separator inside the national number
		"+91 98765 43210",                 //
		"+(91)-9876543210",                //
		"+91-987654321O",                  // letter O
		"+91-９８７６５４３２１０",                  // full-width digits
		"+91.9876543210",                  //
		"+91_9876543210",                  //
		"+91\t9876543210",                 // tab is not a separator
		"+91-",                            //
		"-9876543210",                     //
		"+-9876543210",                    //
		"+91-987654321",                   // 9 digits, India wants 10 to 12
		"+91-9876543210123",               // 13 digits
		"+999-123456789",                  // no such code
		"+0-1234567890",                   //
		"+01-1234567890",                  // leading zero in the code
		"+12345-1234567",                  // code too long
		"+672312345678",                   // +6723 wants 6 digits and nothing shorter fits
		"+1",                              //
		"+11",                             // +1 with 1 digit
		"+123456789012345678901234567890", // 31 bytes, all digits: nothing fits
		"+91-9876543210" + strings.Repeat(" ", 20), // over 32 bytes before trimming
		"+91-98765432\x00",                         //
		"\xff\xfe",                                 //
		"+91-98765432１0",                           //
	} {
		got, err := phone.Parse(in)
		if !errors.Is(err, phone.ErrInvalid) {
			t.Errorf("Parse(%q): got %+v, %v, want ErrInvalid", in, got, err)
			continue
		}
		if got != (phone.Number{}) {
			t.Errorf("Parse(%q): got %+v with an error, want the zero Number", in, got)
		}
		// Errors end up in logs, where numbers must be masked.
		if strings.Contains(err.Error(), "98765") {
			t.Errorf("Parse(%q): error %q repeats the number", in, err)
		}
	}
}

func TestParse_Country(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+1-2025550123", "US"},
		{"+1-4165550123", "CA"},
		{"+1-8765550123", "JM"},
		{"+1-2425550123", "BS"},
		{"+1-5555555555", "US"}, // libphonenumber names no region: +1's main region
		{"+1-0000000000", "US"},
		{"+44-7400123456", "GB"},
		{"+44-7781123456", "GG"},
		{"+44-7624123456", "IM"},
		{"+44-7797123456", "JE"},
		{"+7-7012345678", "KZ"},
		{"+7-9123456789", "RU"},
		{"+61-412345678", "AU"},
		{"+61-891621234", "CC"},
		{"+61-891641234", "AU"}, // Christmas Island is not in the table: +61's main region
		{"+47-41234567", "NO"},
		{"+47-79123456", "SJ"},
		{"+262-692123456", "RE"},
		{"+590-690123456", "GP"},
		{"+212-612345678", "MA"},
		{"+225-0712345678", "CI"},
		{"+381-601234567", "RS"},
		{"+91-9876543210", "IN"},
		{"+872-1234", "PN"},
	} {
		for _, in := range []string{tc.in, strings.Replace(tc.in, "-", "", 1)} {
			got, err := phone.Parse(in)
			if err != nil {
				t.Errorf("Parse(%q): %v", in, err)
				continue
			}
			if got.Country != tc.want {
				t.Errorf("Parse(%q): got country %q, want %q", in, got.Country, tc.want)
			}
		}
	}
}

func TestNumber_Formats(t *testing.T) {
	for _, tc := range []struct {
		n                 phone.Number
		e164, str, masked string
	}{
		{phone.Number{CC: "91", National: "9876543210", Country: "IN"}, "919876543210", "+91-9876543210", "+91-98******10"},
		{phone.Number{CC: "1", National: "9907676111", Country: "US"}, "19907676111", "+1-9907676111", "+1-99******11"},
		{phone.Number{CC: "6723", National: "123456", Country: "NF"}, "6723123456", "+6723-123456", "+6723-12**56"},
		{phone.Number{CC: "872", National: "12345", Country: "PN"}, "87212345", "+872-12345", "+872-***45"},
		{phone.Number{CC: "683", National: "1234", Country: "NU"}, "6831234", "+683-1234", "+683-**34"},
		{phone.Number{CC: "9", National: "12"}, "912", "+9-12", "+9-**"},
		{phone.Number{}, "", "+-", "+-"},
	} {
		if got := tc.n.E164(); got != tc.e164 {
			t.Errorf("%+v.E164(): got %q, want %q", tc.n, got, tc.e164)
		}
		if got := tc.n.String(); got != tc.str {
			t.Errorf("%+v.String(): got %q, want %q", tc.n, got, tc.str)
		}
		if got := tc.n.Masked(); got != tc.masked {
			t.Errorf("%+v.Masked(): got %q, want %q", tc.n, got, tc.masked)
		}
	}
}

// TestParse_Concurrent runs shared-code lookups (which go through
// phonenumbers and its regexp cache) from many goroutines for -race.
func TestParse_Concurrent(t *testing.T) {
	in := []string{"+1-2025550123", "+1-4165550123", "+44-7781123456", "+7-7012345678", "+262-692123456", "+590-690123456"}
	want := []string{"US", "CA", "GG", "KZ", "RE", "GP"}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(in))
	for range 8 {
		wg.Go(func() {
			for i, s := range in {
				if n, err := phone.Parse(s); err != nil || n.Country != want[i] {
					errs <- s + " -> " + n.Country
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Parse: %s", e)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"+91-9876543210", "+91 9876543210", "+919876543210", "+1-9907676111",
		"+44-7781123456", "+7-7012345678", "+6723-123456", "+6723123456",
		"+262692123456", "+872-1234", " +1 2025550123 ", "+91--1", "+", "",
		"+12345678901234567890", "+00-0000", "+1-0000000000", "+6172312345678",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := phone.Parse(s)
		if err != nil {
			if !errors.Is(err, phone.ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		e := n.E164()
		if e == "" {
			t.Fatalf("Parse(%q): empty E164", s)
		}
		for i := 0; i < len(e); i++ {
			if e[i] < '0' || e[i] > '9' {
				t.Fatalf("Parse(%q): E164 %q is not digits only", s, e)
			}
		}
		if _, ok := phone.CountryByISO(n.Country); !ok {
			t.Fatalf("Parse(%q): country %q not in the table", s, n.Country)
		}
		back, err := phone.Parse(n.String())
		if err != nil || back != n {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", s, n, n.String(), back, err)
		}
		if m := n.Masked(); len(m) != len(n.String()) {
			t.Fatalf("Parse(%q): Masked %q not as long as %q", s, m, n.String())
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"SingleCode", "+91-9876543210"},
		{"SingleCodeE164", "+919876543210"},
		{"SharedCode", "+1-4165550123"},
		{"SharedCodeE164", "+447781123456"},
		{"Invalid", "+91-98765x3210"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = phone.Parse(bc.in)
			}
		})
	}
}
