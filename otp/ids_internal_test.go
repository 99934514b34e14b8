package otp

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestSmallIDForms_SameAsBigInt(t *testing.T) {
	ids := []string{"1", "9", "A", "F", "10", "26", "1A", "FF", "100", "3FA2B9C4", "123456789",
		"9999999999999999999", "18446744073709551615", "18446744073709551616", "FFFFFFFFFFFFFFFF",
		"10000000000000000", "ABCDEF0123456789", "1234567890123456789", "ABC-123", "Z9"}
	for i := 1; i <= 20; i++ { // every length, both alphabets
		ids = append(ids, strings.Repeat("9", i), strings.Repeat("F", i), strings.Repeat("7", i))
	}
	for _, s := range ids {
		got, ok := smallIDForms(s)
		if !ok {
			continue // IDForms takes the big.Int path
		}
		if want := bigIDForms(s); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("smallIDForms(%q) = %v, want %v", s, got, want)
		}
	}
	if _, ok := smallIDForms("18446744073709551616"); ok {
		t.Error("an id beyond 64 bits took the machine-integer path")
	}
}

func BenchmarkIDForms(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		IDForms("3FA2B9C4")
		IDForms("1234567890")
	}
}

// BenchmarkCanonicalID: what a store pays for an id's index key, the
// alternates left out.
func BenchmarkCanonicalID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		CanonicalID("3FA2B9C4")
		CanonicalID("1234567890")
	}
}

// TestIDFormList: IDForms's canonical form, then its alternates, in one
// list; none for an empty id.
func TestIDFormList(t *testing.T) {
	for id, want := range map[string][]string{
		"":          nil,
		"  ":        nil,
		"000":       {"0"},
		"0a":        {"A", "10"},
		"255":       {"255", "FF", "597"},
		"ab-12":     {"AB-12"},
		"000000042": {"42", "2A", "66"},
	} {
		forms, n := IDFormList(id)
		canonical, alts := IDForms(id)
		if !slices.Equal(forms[:n], want) || (n > 0 && (forms[0] != canonical || !slices.Equal(forms[1:n], alts))) {
			t.Errorf("IDFormList(%q) = %q; want %q (IDForms: %q, %q)", id, forms[:n], want, canonical, alts)
		}
	}
}
