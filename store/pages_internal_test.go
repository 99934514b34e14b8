package store

import (
	"testing"
	"time"
)

// TestPagesSchedule: the table pages are released once the interval has
// passed, or sooner once the resident file pages have grown by the
// threshold over the fewest seen since the last release.
func TestPagesSchedule(t *testing.T) {
	const mib = 1 << 20
	t0 := time.Unix(1_000_000_000, 0)
	s := pagesSchedule{every: time.Second, growth: 8 * mib, low: -1}
	s.released(t0, 40*mib)
	for _, c := range []struct {
		what     string
		at       time.Duration
		resident int64
		want     bool
	}{
		{"grown 4 MiB", 100 * time.Millisecond, 44 * mib, false},
		{"fewer than at the release: the new low", 200 * time.Millisecond, 30 * mib, false},
		{"a byte short of 8 MiB over the low", 300 * time.Millisecond, 38*mib - 1, false},
		{"8 MiB over the low, 2 under the release", 400 * time.Millisecond, 38 * mib, true},
	} {
		if got := s.due(t0.Add(c.at), c.resident); got != c.want {
			t.Errorf("%s (%v, %d MiB): due = %v, want %v", c.what, c.at, c.resident/mib, got, c.want)
		}
	}
	s.released(t0.Add(400*time.Millisecond), 31*mib)
	for _, c := range []struct {
		what     string
		at       time.Duration
		resident int64
		want     bool
	}{
		{"resident unknown, within the interval", 500 * time.Millisecond, -1, false},
		{"resident unknown, a nanosecond short", 1400*time.Millisecond - 1, -1, false},
		{"resident unknown, the interval passed", 1400 * time.Millisecond, -1, true},
		{"unchanged, the interval passed", 1500 * time.Millisecond, 31 * mib, true},
	} {
		if got := s.due(t0.Add(c.at), c.resident); got != c.want {
			t.Errorf("%s (%v): due = %v, want %v", c.what, c.at, got, c.want)
		}
	}
	// A release whose resident bytes could not be read leaves no low: the
	// first known reading becomes it.
	s.released(t0.Add(2*time.Second), -1)
	if s.due(t0.Add(2100*time.Millisecond), 100*mib) {
		t.Error("first reading after an unknown one: due, want it taken as the low")
	}
	if !s.due(t0.Add(2200*time.Millisecond), 108*mib) {
		t.Error("8 MiB over that reading: not due")
	}
}

// TestOpen_PagesSchedule: a store releases its table pages every second,
// and sooner after 8 MiB of growth (README, "Memory"), from its first
// reading on.
func TestOpen_PagesSchedule(t *testing.T) {
	db := openTest(t, Options{})
	want := pagesSchedule{every: time.Second, growth: 8 << 20, low: -1}
	if db.pages != want {
		t.Fatalf("Open's schedule: got %+v, want %+v", db.pages, want)
	}
}
