package loadtest

import "testing"

// TestHandset_Numbers: codes and counts are kept per destination, whether
// it packs into a number key (leading zeros kept apart) or not.
func TestHandset_Numbers(t *testing.T) {
	h := NewHandset()
	dsts := []string{"919876543210", "0919876543210", "1", "12345678901234567", "123456789012345678", "+91-98", "abc"}
	for i, d := range dsts {
		h.record(d, "Your code is "+string(rune('1'+i))+"23456. Do not share.")
		h.record(d, "Your code is "+string(rune('1'+i))+"34567.")
	}
	h.record("919876500000", "no code here")
	for i, d := range dsts {
		want := string(rune('1'+i)) + "34567"
		if got, ok := h.Code(d); !ok || got != want {
			t.Errorf("Code(%q) = %q, %v; want %q", d, got, ok, want)
		}
		if got, ok := h.Code(d); ok {
			t.Errorf("Code(%q) again = %q: want it forgotten", d, got)
		}
	}
	if got, ok := h.Code("919876500000"); ok {
		t.Errorf("a text without a code gave %q", got)
	}
	for prefix, want := range map[string]int{"91987654": 2, "0919": 2, "1": 2 + 2 + 2, "12345678901234567": 2 + 2, "+91": 2, "abc": 2, "9198765": 3} {
		if got := h.Received(prefix); got != want {
			t.Errorf("Received(%q) = %d, want %d", prefix, got, want)
		}
	}
}
