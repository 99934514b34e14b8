package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestProcsFor: two Ps per CPU unless GOMAXPROCS is in the environment or
// a CPU quota applies.
func TestProcsFor(t *testing.T) {
	for _, tc := range []struct {
		env   string
		def   int
		quota bool
		want  int
		why   string
	}{
		{"", 2, false, 4, "two per CPU"},
		{"", 8, false, 16, "two per CPU"},
		{"", 1, false, 2, "two per CPU"},
		{"3", 3, false, 3, "environment"}, // the runtime applied it: its default is the variable
		{"", 2, true, 2, "quota"},
		{"3", 3, true, 3, "environment"},
		// values the runtime ignores: its default stands, and so doubles
		{"0", 2, false, 4, "not a positive number"},
		{"-2", 2, false, 4, "not a positive number"},
		{"+3", 3, false, 3, "environment"}, // the runtime takes a sign
		{"four", 2, false, 4, "not a positive number"},
		{"99999999999", 2, false, 4, "not a positive number"},
		{"four", 2, true, 2, "quota"},
	} {
		n, why := procsFor(tc.env, tc.def, tc.quota)
		if n != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("procsFor(%q, %d, %t) = %d, %q; want %d, %q", tc.env, tc.def, tc.quota, n, why, tc.want, tc.why)
		}
	}
}

// TestCPUQuota reads cgroup files laid out as the kernel mounts them, v2
// and v1, with the limit on the process's own cgroup, on one above it, or
// nowhere.
func TestCPUQuota(t *testing.T) {
	write := func(t *testing.T, root, rel, text string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const v2 = "0::/system.slice/otpgate.service\n"
	const v1 = "4:memory:/system.slice/otpgate.service\n2:cpu,cpuacct:/system.slice/otpgate.service\n0::/\n"
	for _, tc := range []struct {
		name  string
		self  string
		files map[string]string
		want  bool
	}{
		{"v2 none", v2, map[string]string{"cpu.max": "max 100000\n", "system.slice/cpu.max": "max 100000\n", "system.slice/otpgate.service/cpu.max": "max 100000\n"}, false},
		{"v2 own", v2, map[string]string{"system.slice/otpgate.service/cpu.max": "150000 100000\n"}, true},
		{"v2 parent", v2, map[string]string{"system.slice/cpu.max": "200000 100000\n", "system.slice/otpgate.service/cpu.max": "max 100000\n"}, true},
		{"v2 no files", v2, nil, false},
		{"v1 none", v1, map[string]string{"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/system.slice/otpgate.service/cpu.cfs_quota_us": "-1\n"}, false},
		{"v1 own", v1, map[string]string{"cpu,cpuacct/system.slice/otpgate.service/cpu.cfs_quota_us": "50000\n"}, true},
		{"v1 through the cpu link", v1, map[string]string{"cpu/system.slice/cpu.cfs_quota_us": "100000\n"}, true},
		{"v1 memory only", "4:memory:/a\n", map[string]string{"memory/a/cpu.cfs_quota_us": "50000\n"}, false},
		{"empty", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, text := range tc.files {
				write(t, root, rel, text)
			}
			if got := cpuQuota(root, tc.self); got != tc.want {
				t.Fatalf("cpuQuota = %t, want %t", got, tc.want)
			}
		})
	}
}

// TestSetProcs: on this machine SetProcs doubles the runtime's default,
// or keeps it under a CPU quota; it logs what it chose, and gives the same
// answer when called again (it starts from the runtime's default, not
// from what it set before).
func TestSetProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	t.Cleanup(func() { runtime.GOMAXPROCS(initialProcs) })
	want, reason := 2*initialProcs, "two per CPU"
	if underQuota() {
		want, reason = initialProcs, "quota"
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for range 2 {
		SetProcs(log)
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Fatalf("GOMAXPROCS %d after SetProcs, want %d (runtime's default %d, %d CPUs)", got, want, initialProcs, runtime.NumCPU())
		}
	}
	line := fmt.Sprintf(`msg="Go threads" gomaxprocs=%d cpus=%d reason="`, want, runtime.NumCPU())
	if strings.Count(buf.String(), line) != 2 || !strings.Contains(buf.String(), reason) {
		t.Fatalf("log %q: want %q twice, with %q", buf.String(), line, reason)
	}
}
