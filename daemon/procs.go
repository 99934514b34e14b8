package daemon

import (
	"log/slog"
	"os"
	"runtime"
)

// Threads for Go code (GOMAXPROCS). The Go scheduler runs the goroutines
// of a P in turn, each for up to 10 ms. A badger compaction starts a dozen
// goroutines that want the CPU for a second or two (table builders, block
// compressors); with one P per core they queue in front of the requests'
// short goroutines, and a request waits behind several of their slices:
// on 2 cores, the soak's stretches with a compaction had p99 of 57-74 ms
// and the store's commits took up to 48 ms. With two Ps per core the
// kernel's scheduler, which favours a thread that wakes from a wait over
// one that has been running, interleaves the requests' threads with the
// compactions' instead: no stretch over 50 ms (README, "Performance").
//
// The runtime's own default is one P per CPU it may use. Under a CPU quota
// (cgroup cpu.max) that default is the quota, and more threads would only
// use the quota up sooner and stall for the rest of its period: the
// default stays then, as it does when GOMAXPROCS is set in the
// environment.

// procsPerCPU is the number of Ps per CPU when neither GOMAXPROCS nor a
// CPU quota decides.
const procsPerCPU = 2

// initialProcs is the runtime's GOMAXPROCS before SetProcs changed it.
var initialProcs = runtime.GOMAXPROCS(0)

// procsFor returns the GOMAXPROCS the gateway runs with, and why: env is
// the GOMAXPROCS environment variable, def the runtime's default and cpus
// the CPUs the process may run on.
func procsFor(env string, def, cpus int) (n int, why string) {
	switch {
	case env != "":
		return def, "GOMAXPROCS set in the environment"
	case def < cpus:
		return def, "the CPU quota's"
	}
	return procsPerCPU * def, "two per CPU, so that compactions cannot hold every thread"
}

// SetProcs sets GOMAXPROCS for a gateway process (procsFor) and logs it.
// Call it once, before the gateway starts; `otpgate run` does.
func SetProcs(log *slog.Logger) {
	n, why := procsFor(os.Getenv("GOMAXPROCS"), initialProcs, runtime.NumCPU())
	if n != initialProcs {
		runtime.GOMAXPROCS(n)
	}
	log.Info("Go threads", keyGOMAXPROCS, n, keyCPUs, runtime.NumCPU(), keyReason, why)
}
