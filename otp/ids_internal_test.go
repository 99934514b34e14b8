package otp

import (
	"fmt"
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
