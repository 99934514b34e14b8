package otp

import (
	"fmt"
	"testing"
	"time"
)

func TestTextCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newTextCache(3)
	for i := 0; i < 5; i++ {
		c.put(fmt.Sprint(i), SMS{Text: "text", Masked: "masked"}, now.Add(time.Minute), now)
	}
	if len(c.byID) != 3 || len(c.order) != 3 {
		t.Fatalf("holds %d texts (%d ids in order), want the newest 3", len(c.byID), len(c.order))
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
	// Expired entries go at the next put, whatever the size.
	c.put("5", SMS{Text: "text", Masked: "masked"}, now.Add(2*time.Hour), now.Add(time.Hour))
	if len(c.byID) != 1 {
		t.Fatalf("holds %d texts after the others expired, want 1", len(c.byID))
	}
}
