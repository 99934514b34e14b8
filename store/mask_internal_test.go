package store

import "testing"

func TestMaskKey(t *testing.T) {
	for in, want := range map[string]string{
		"o/c1/919876543210":      "o/c1/91********10",
		"p/carrier-a/0000001A3F": "p/carrier-a/00***01A3F",
		"m/614548bf9ac11563e90":  "m/614548bf9ac11563e90", // runs under 7 digits stay
		"c1/4477009001":          "c1/44******01",
		"":                       "",
	} {
		if got := maskKey(in); got != want {
			t.Errorf("maskKey(%q) = %q, want %q", in, got, want)
		}
	}
}
