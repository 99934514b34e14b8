package daemon

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier tells systemd (Type=notify) about the daemon's state over the
// datagram socket named by NOTIFY_SOCKET, and pings its watchdog. Without
// NOTIFY_SOCKET (not started by systemd, or Type=simple) every method is a
// no-op. Failures to notify are logged, never returned: systemd is an
// observer, and the gateway keeps serving without it. A Notifier is safe
// for concurrent use.
type Notifier struct {
	log      *slog.Logger
	enabled  bool
	interval time.Duration // watchdog ping period; 0 when the watchdog is off
	failing  atomic.Bool   // the last send failed: log only the first of a run
	stopping atomic.Bool   // Stopping was sent: no READY or RELOADING after it
}

// NewNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once.
// The watchdog is on when WATCHDOG_USEC is set and WATCHDOG_PID is unset or
// this process; pings then go out every WATCHDOG_USEC/2, as sd_watchdog_enabled(3)
// advises. The variables are left in the environment. log may be nil.
func NewNotifier(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{log: log.With(keyComponent, "systemd"), enabled: os.Getenv("NOTIFY_SOCKET") != ""}
	if !n.enabled {
		return n
	}
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("watchdog settings ignored", keyError, err)
		return n
	}
	n.interval = d / 2
	if d > 0 && n.interval <= 0 {
		n.interval = d // WATCHDOG_USEC=1: ping as often as asked
	}
	return n
}

// Enabled reports whether NOTIFY_SOCKET was set.
func (n *Notifier) Enabled() bool { return n.enabled }

// WatchdogInterval is how often Run pings the watchdog: half of
// WATCHDOG_USEC, or 0 when the watchdog is off (then Run only waits).
func (n *Notifier) WatchdogInterval() time.Duration { return n.interval }

// Ready tells systemd that startup (or a reload) is complete: call it once
// the HTTP listener is serving, and after every reload. After Stopping it
// sends nothing: a reload that ends during the shutdown does not make the
// daemon look ready again.
func (n *Notifier) Ready() {
	if !n.stopping.Load() {
		n.notify(sd.SdNotifyReady + "\nSTATUS=serving")
	}
}

// Reloading tells systemd that a reload has begun; Ready must follow when
// it is over, whether the new config was taken or rejected. MONOTONIC_USEC
// is required by systemd 253 and later to tell this reload from an older one.
// After Stopping it sends nothing.
func (n *Notifier) Reloading() {
	if !n.stopping.Load() {
		n.notify(sd.SdNotifyReloading + "\n" + monotonicUsec() + "STATUS=reloading configuration")
	}
}

// Stopping tells systemd that shutdown has begun (draining requests,
// unbinding carriers), so it waits up to TimeoutStopSec instead of
// treating the silence as a hang. Watchdog pings go on after it.
func (n *Notifier) Stopping() {
	n.stopping.Store(true)
	n.notify(sd.SdNotifyStopping + "\nSTATUS=draining and unbinding")
}

// Run pings the watchdog every WatchdogInterval while healthy reports true,
// and returns when ctx is done. An unhealthy daemon skips the ping, so that
// systemd restarts a wedged process after WatchdogSec (Restart=on-failure).
// healthy is called from Run's goroutine only, once per period; it must
// not block for long. Without a watchdog Run just waits for ctx.
func (n *Notifier) Run(ctx context.Context, healthy func() bool) {
	if n.interval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(n.interval)
	defer t.Stop()
	wasHealthy := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok := healthy == nil || healthy()
		switch {
		case ok && !wasHealthy:
			n.log.Info("healthy again: watchdog pings resumed")
		case !ok && wasHealthy:
			n.log.Error("unhealthy: watchdog pings withheld, systemd restarts the daemon after WatchdogSec")
		}
		wasHealthy = ok
		if ok {
			n.notify(sd.SdNotifyWatchdog)
		}
	}
}

// notify sends state; errors are logged once per run of failures.
func (n *Notifier) notify(state string) {
	if !n.enabled {
		return
	}
	sent, err := sd.SdNotify(false, state)
	if err == nil && sent {
		if n.failing.Swap(false) {
			n.log.Info("notify socket reachable again")
		}
		return
	}
	if !n.failing.Swap(true) {
		n.log.Warn("notify systemd failed", keyError, err)
	}
}

// monotonicUsec returns "MONOTONIC_USEC=<µs of CLOCK_MONOTONIC>\n", or ""
// if the clock cannot be read.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return ""
	}
	return "MONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10) + "\n"
}
