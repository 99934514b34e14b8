package redistest_test

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestShared: the shared cluster has 3 masters, each with a replica in
// sync, every slot served, and append-only fsync at every write.
func TestShared(t *testing.T) {
	c := redistest.Shared(t)
	if got := len(c.Masters()); got != 3 {
		t.Fatalf("got %d masters, want 3", got)
	}
	out, err := c.Nodes[0].CLI("CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:6"} {
		if !strings.Contains(out, want) {
			t.Fatalf("CLUSTER INFO lacks %s:\n%s", want, out)
		}
	}
	if out, err := c.Nodes[1].CLI("CONFIG", "GET", "appendfsync"); err != nil || !strings.Contains(out, "always") {
		t.Fatalf("appendfsync: %q %v", out, err)
	}
}
