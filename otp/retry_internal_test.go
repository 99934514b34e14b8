package otp

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// held lists, in ring order, the ids of the ring's slots that still hold
// anything; "" is a slot whose text was taken but not cleared.
func held(c *textCache) []string {
	var ids []string
	for _, e := range c.ring {
		if e.id != "" || e.text != "" || e.masked != "" || e.tlvs != nil || e.expires != 0 {
			ids = append(ids, e.id)
		}
	}
	return ids
}

func TestTextCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newTextCache(3)
	for i := 0; i < 5; i++ {
		c.put(fmt.Sprint(i), SMS{Text: "text", Masked: "masked"}, now.Add(time.Minute), now)
	}
	if len(c.byID) != 3 || c.n != 3 {
		t.Fatalf("holds %d texts (%d entries in the ring), want the newest 3", len(c.byID), c.n)
	}
	if _, ok := c.take("1", now); ok {
		t.Fatal("the oldest text was not dropped past max")
	}
	if _, ok := c.take("4", now.Add(time.Minute)); ok {
		t.Fatal("an expired text was returned")
	}
	if e, ok := c.take("3", now); !ok || e.text != "text" {
		t.Fatalf("got %+v %v, want the text", e, ok)
	}
	if _, ok := c.take("3", now); ok {
		t.Fatal("a text was returned twice (a message is retried once)")
	}
	if ids := held(c); slices.Contains(ids, "3") || slices.Contains(ids, "") {
		t.Fatalf("the ring still holds the taken text: slots of %q", ids)
	}
	// Expired entries go at the next put, whatever the size.
	c.put("5", SMS{Text: "text", Masked: "masked"}, now.Add(2*time.Hour), now.Add(time.Hour))
	if len(c.byID) != 1 || c.n != 1 {
		t.Fatalf("holds %d texts (%d entries) after the others expired, want 1", len(c.byID), c.n)
	}
	if ids := held(c); !slices.Equal(ids, []string{"5"}) {
		t.Fatalf("the ring holds slots of %q, want only 5's: a dropped text stays in memory", ids)
	}
	// Dropped texts (with their codes) leave the ring at once, not when
	// their slot is next written.
	c = newTextCache(4)
	c.put("a", SMS{Text: "code 1"}, now.Add(time.Minute), now)
	c.put("b", SMS{Text: "code 2"}, now.Add(time.Minute), now)
	c.put("c", SMS{Text: "code 3"}, now.Add(time.Hour), now.Add(2*time.Minute))
	if ids := held(c); !slices.Equal(ids, []string{"c"}) {
		t.Fatalf("the ring holds slots of %q, want only c's: expired texts stay in memory", ids)
	}
}

// TestTextCache_Ring: round after round of the ring, with texts taken here
// and there, every live text of the newest max is found, under its own id,
// and no other.
func TestTextCache_Ring(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const max = 7
	c := newTextCache(max)
	for i := 0; i < 100; i++ {
		c.put(fmt.Sprint(i), SMS{Text: fmt.Sprint("text ", i)}, now.Add(time.Minute), now)
		if i%5 == 0 {
			if e, ok := c.take(fmt.Sprint(i-2), now); i >= 2 && (!ok || e.text != fmt.Sprint("text ", i-2)) {
				t.Fatalf("after put %d: take %d got %+v %v", i, i-2, e, ok)
			}
		}
		if len(c.byID) > max || c.n > max {
			t.Fatalf("after put %d: %d ids, %d entries; want at most %d", i, len(c.byID), c.n, max)
		}
	}
	for i := 0; i < 100; i++ {
		e, ok := c.take(fmt.Sprint(i), now)
		want := i >= 100-max && !(i%5 == 3 && i <= 93) // the newest 7, less those taken (3, 8, ... 93)
		if ok != want || (ok && e.text != fmt.Sprint("text ", i)) {
			t.Fatalf("take %d: got %+v %v, want found %v", i, e, ok, want)
		}
	}
	// An id put twice: the older entry's eviction leaves the newer found.
	c = newTextCache(2)
	c.put("a", SMS{Text: "old"}, now.Add(time.Minute), now)
	c.put("a", SMS{Text: "new"}, now.Add(time.Minute), now)
	c.put("b", SMS{Text: "b"}, now.Add(time.Minute), now) // evicts the old "a"
	if e, ok := c.take("a", now); !ok || e.text != "new" {
		t.Fatalf("got %+v %v, want the newer text of a", e, ok)
	}
}

// TestTextCache_Memory: a full cache (retryTexts entries, past many rounds
// of the ring) costs the heap at most 150 bytes an entry besides its
// strings. A map of entries held 228.
func TestTextCache_Memory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	now := time.Unix(1_700_000_000, 0)
	const n = 3 * retryTexts
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%026d", i)
	}
	sms := SMS{Text: "Your code is 123456", Masked: "Your code is ******"}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	c := newTextCache(retryTexts)
	for i, id := range ids {
		c.put(id, sms, now.Add(time.Hour), now)
		if i%3 == 0 {
			c.take(ids[i/2], now) // some retried, most not
		}
	}
	per := float64(heap()-h0) / retryTexts
	t.Logf("%.0f bytes an entry", per)
	if c.n != retryTexts || per > 150 {
		t.Fatalf("%d entries, %.0f bytes an entry; want %d and at most 150", c.n, per, retryTexts)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(ids)
}
