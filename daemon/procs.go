package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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
// quota whether a cgroup limits the process's CPU. A variable that is not
// a positive number is ignored, as the runtime ignores it.
func procsFor(env string, def int, quota bool) (n int, why string) {
	const twice = "two per CPU, so that compactions cannot hold every thread"
	switch {
	case validProcs(env):
		return def, "GOMAXPROCS set in the environment"
	case quota:
		return def, "the runtime's, under a CPU quota"
	case env != "":
		return procsPerCPU * def, twice + " (GOMAXPROCS in the environment is not a positive number: ignored)"
	}
	return procsPerCPU * def, twice
}

// validProcs reports whether the runtime takes env, a GOMAXPROCS value,
// as its thread count: a decimal number above 0 within 32 bits, as the
// runtime parses it.
func validProcs(env string) bool {
	n, err := strconv.ParseInt(env, 10, 32)
	return err == nil && n > 0
}

// cpuQuota reports whether a cgroup limits the CPU of the process whose
// /proc/PID/cgroup reads self: a cpu.max other than "max" (cgroup v2) or
// a cpu.cfs_quota_us other than -1 (v1) in its cgroup or any above it,
// under root (/sys/fs/cgroup). A file it cannot read is no limit.
func cpuQuota(root, self string) bool {
	for line := range strings.Lines(self) {
		id, rest, _ := strings.Cut(strings.TrimSpace(line), ":")
		controllers, path, ok := strings.Cut(rest, ":")
		switch {
		case !ok:
		case id == "0" && controllers == "":
			if limitedUp(root, path, "cpu.max") {
				return true
			}
		case slices.Contains(strings.Split(controllers, ","), "cpu"):
			// v1 mounts a hierarchy under its controllers' names
			// (cpu,cpuacct) with a link named cpu to it.
			const file = "cpu.cfs_quota_us"
			if limitedUp(filepath.Join(root, controllers), path, file) ||
				controllers != "cpu" && limitedUp(filepath.Join(root, "cpu"), path, file) {
				return true
			}
		}
	}
	return false
}

// limitedUp reports whether file sets a CPU limit in the cgroup at path
// under dir or in any cgroup above it.
func limitedUp(dir, path, file string) bool {
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		if limited(filepath.Join(dir, p, file)) {
			return true
		}
		if p == "/" {
			return false
		}
	}
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

// underQuota reports whether a CPU quota limits this process: the
// runtime's default is below the CPUs (it found one), or the cgroup files
// set one (a quota the runtime rounds up to the CPU count, as it does 1.5
// CPUs on 2).
func underQuota() bool {
	self, _ := os.ReadFile("/proc/self/cgroup") // none off Linux: no quota
	return initialProcs < runtime.NumCPU() || cpuQuota("/sys/fs/cgroup", string(self))
}

// SetProcs sets GOMAXPROCS for a gateway process (procsFor) and logs it.
// Call it once, before the gateway starts; `otpgate run` does.
func SetProcs(log *slog.Logger) {
	n, why := procsFor(os.Getenv("GOMAXPROCS"), initialProcs, underQuota())
	if n != initialProcs {
		runtime.GOMAXPROCS(n)
	}
	log.Info("Go threads", keyGOMAXPROCS, n, keyCPUs, runtime.NumCPU(), keyReason, why)
}
