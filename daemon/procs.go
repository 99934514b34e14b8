package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Threads for Go code (GOMAXPROCS). The Go scheduler runs the goroutines
// of a P in turn, each for up to 10 ms. A badger compaction starts a dozen
// goroutines that want the CPU for a second or two (table builders, block
// compressors); with one P per core they queue in front of the requests'
// short goroutines, and a request waits behind several of their slices:
// on 2 cores every soak of 300,000 sends had a stretch with p99 over
// 50 ms (57-76 ms), and the store's commits took up to 48 ms. With two Ps
// per core the kernel's scheduler, which favours a thread that wakes from
// a wait over one that has been running, interleaves the requests'
// threads with the compactions' instead: 1 stretch of 90 over 50 ms
// (51.5 ms) in 9 soaks (README, "Performance").
//
// Under a CPU quota (cgroup cpu.max, or cpu.cfs_quota_us in cgroup v1)
// more threads would only use the quota up sooner and stall for the rest
// of its period, and the runtime keeps its default in step with the
// quota only while nobody sets GOMAXPROCS: the default stays then, as it
// does when GOMAXPROCS is set in the environment.

// procsPerCPU is the number of Ps per CPU when neither GOMAXPROCS nor a
// CPU quota decides.
const procsPerCPU = 2

// initialProcs is the runtime's GOMAXPROCS before SetProcs changed it.
var initialProcs = runtime.GOMAXPROCS(0)

// procsFor returns the GOMAXPROCS the gateway runs with, and why: env is
// the GOMAXPROCS environment variable, def the runtime's default, and
// quota whether a cgroup limits the process's CPU.
func procsFor(env string, def int, quota bool) (n int, why string) {
	switch {
	case env != "":
		return def, "GOMAXPROCS set in the environment"
	case quota:
		return def, "the runtime's, under a CPU quota"
	}
	return procsPerCPU * def, "two per CPU, so that compactions cannot hold every thread"
}

// cpuQuota reports whether a cgroup limits the CPU of the process whose
// /proc/PID/cgroup reads self: a cpu.max other than "max" (cgroup v2) or
// a cpu.cfs_quota_us other than -1 (v1) in its cgroup or any above it,
// under root (/sys/fs/cgroup). A file it cannot read is no limit.
func cpuQuota(root, self string) bool {
	for line := range strings.Lines(self) {
		id, rest, _ := strings.Cut(strings.TrimSpace(line), ":")
		controllers, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		var dirs []string
		var file string
		switch {
		case id == "0" && controllers == "":
			dirs, file = []string{root}, "cpu.max"
		case slices.Contains(strings.Split(controllers, ","), "cpu"):
			dirs = []string{filepath.Join(root, controllers), filepath.Join(root, "cpu"), filepath.Join(root, "cpu,cpuacct")}
			file = "cpu.cfs_quota_us"
		default:
			continue
		}
		for _, dir := range dirs {
			for p := path; ; p = filepath.Dir(p) {
				if limited(filepath.Join(dir, p, file)) {
					return true
				}
				if p == "/" || p == "." || p == "" {
					break
				}
			}
		}
	}
	return false
}

// limited reports whether the cgroup file at path sets a CPU limit.
func limited(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 0 && f[0] != "max" && f[0] != "-1"
}

// SetProcs sets GOMAXPROCS for a gateway process (procsFor) and logs it.
// Call it once, before the gateway starts; `otpgate run` does.
func SetProcs(log *slog.Logger) {
	self, _ := os.ReadFile("/proc/self/cgroup") // none off Linux: no quota
	quota := initialProcs < runtime.NumCPU() || cpuQuota("/sys/fs/cgroup", string(self))
	n, why := procsFor(os.Getenv("GOMAXPROCS"), initialProcs, quota)
	if n != initialProcs {
		runtime.GOMAXPROCS(n)
	}
	log.Info("Go threads", keyGOMAXPROCS, n, keyCPUs, runtime.NumCPU(), keyReason, why)
}
