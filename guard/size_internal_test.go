package guard

import (
	"testing"
	"unsafe"
)

// TestSizes keeps the sizes the comments and the documented memory bound
// quote.
func TestSizes(t *testing.T) {
	for name, got := range map[string]uintptr{"velocity": unsafe.Sizeof(velocity{}), "conversion": unsafe.Sizeof(conversion{}),
		"rangeState": unsafe.Sizeof(rangeState{}), "budgetState": unsafe.Sizeof(budgetState{})} {
		want := map[string]uintptr{"velocity": 152, "conversion": 152, "rangeState": 304, "budgetState": 184}[name]
		if got != want {
			t.Errorf("%s: %d bytes, want %d", name, got, want)
		}
	}
}
