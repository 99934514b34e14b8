package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

// TestProcsFor: two Ps per CPU unless GOMAXPROCS is in the environment or
// a CPU quota made the runtime's default smaller than the CPUs.
func TestProcsFor(t *testing.T) {
	for _, tc := range []struct {
		env       string
		def, cpus int
		want      int
		why       string
	}{
		{"", 2, 2, 4, "two per CPU"},
		{"", 8, 8, 16, "two per CPU"},
		{"", 1, 1, 2, "two per CPU"},
		{"3", 3, 2, 3, "environment"}, // the runtime applied it: its default is the variable
		{"", 2, 8, 2, "quota"},        // cpu.max of 2 CPUs on an 8-CPU machine
	} {
		n, why := procsFor(tc.env, tc.def, tc.cpus)
		if n != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("procsFor(%q, %d, %d) = %d, %q; want %d, %q", tc.env, tc.def, tc.cpus, n, why, tc.want, tc.why)
		}
	}
}

// TestSetProcs: SetProcs applies procsFor's answer, logs it, and gives the
// same answer when called again (it starts from the runtime's default, not
// from what it set before).
func TestSetProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	t.Cleanup(func() { runtime.GOMAXPROCS(initialProcs) })
	want, _ := procsFor("", initialProcs, runtime.NumCPU())
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for range 2 {
		SetProcs(log)
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Fatalf("GOMAXPROCS %d after SetProcs, want %d (runtime's default %d, %d CPUs)", got, want, initialProcs, runtime.NumCPU())
		}
	}
	if line := fmt.Sprintf(`msg="Go threads" gomaxprocs=%d`, want); strings.Count(buf.String(), line) != 2 {
		t.Fatalf("log %q: want %q twice", buf.String(), line)
	}
}
