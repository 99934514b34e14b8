package daemon_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
	"golang.org/x/sys/unix"
)

// notifySocket is systemd's side of NOTIFY_SOCKET: a unix datagram socket
// in a temp dir, named in the environment for the test.
type notifySocket struct {
	conn *net.UnixConn
}

func listenNotify(tb testing.TB) *notifySocket {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "notify.sock")
	if len(path) >= 100 { // sun_path holds 108 bytes
		dir, err := os.MkdirTemp("", "sd")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "n.sock")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	tb.Setenv("NOTIFY_SOCKET", path)
	return &notifySocket{conn: conn}
}

// next returns the next datagram; the deadline only keeps a broken
// Notifier from hanging the test.
func (s *notifySocket) next(tb testing.TB) string {
	tb.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	if err != nil {
		tb.Fatalf("no notify message: %v", err)
	}
	return string(buf[:n])
}

// fields splits a notify message into its KEY=VALUE lines.
func fields(tb testing.TB, msg string) map[string]string {
	tb.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(msg, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			tb.Fatalf("line %q of %q is not KEY=VALUE", line, msg)
		}
		m[k] = v
	}
	return m
}

func monotonicUsec(tb testing.TB) int64 {
	tb.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		tb.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestNotifier_Messages(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := daemon.NewNotifier(testLogger(t))
	if !n.Enabled() {
		t.Fatal("Enabled: got false with NOTIFY_SOCKET set")
	}
	if got, want := n.WatchdogInterval(), 50*time.Millisecond; got != want {
		t.Fatalf("WatchdogInterval: got %v, want %v", got, want)
	}

	t.Run("Ready", func(t *testing.T) {
		n.Ready()
		f := fields(t, sock.next(t))
		if f["READY"] != "1" || f["STATUS"] == "" {
			t.Fatalf("got %v, want READY=1 and a STATUS", f)
		}
	})
	t.Run("Reloading", func(t *testing.T) {
		before := monotonicUsec(t)
		n.Reloading()
		after := monotonicUsec(t)
		f := fields(t, sock.next(t))
		if f["RELOADING"] != "1" {
			t.Fatalf("got %v, want RELOADING=1", f)
		}
		us, err := strconv.ParseInt(f["MONOTONIC_USEC"], 10, 64)
		if err != nil || us < before || us > after {
			t.Fatalf("MONOTONIC_USEC: got %q, want CLOCK_MONOTONIC µs in [%d, %d]", f["MONOTONIC_USEC"], before, after)
		}
		n.Ready() // a reload ends with READY=1
		if f := fields(t, sock.next(t)); f["READY"] != "1" {
			t.Fatalf("after reload: got %v, want READY=1", f)
		}
	})
	t.Run("Watchdog", func(t *testing.T) {
		// healthy answers what the test feeds it, one answer per period.
		answers := make(chan bool)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.Run(ctx, func() bool {
				select {
				case ok := <-answers:
					return ok
				case <-ctx.Done():
					return false
				}
			})
		}()
		// Three unhealthy periods, fully handled once a fourth call takes
		// its answer: none of them may ping.
		for i := 0; i < 4; i++ {
			answers <- false
		}
		n.Stopping() // a marker after the unhealthy periods
		answers <- true
		answers <- true
		for {
			msg := sock.next(t)
			if msg == "WATCHDOG=1" {
				t.Fatal("got WATCHDOG=1 while unhealthy, want no ping")
			}
			if fields(t, msg)["STOPPING"] == "1" {
				break
			}
		}
		for i := 0; i < 2; i++ {
			if got := sock.next(t); got != "WATCHDOG=1" {
				t.Fatalf("ping %d: got %q, want WATCHDOG=1", i+1, got)
			}
		}
		cancel()
		<-done
	})
	t.Run("Stopping", func(t *testing.T) {
		n.Stopping()
		if f := fields(t, sock.next(t)); f["STOPPING"] != "1" {
			t.Fatalf("got %v, want STOPPING=1", f)
		}
	})
}

// TestNotifier_NoReadyAfterStopping: a reload that ends while the daemon
// stops (SIGTERM during its drain) sends neither RELOADING nor READY after
// STOPPING: systemd must not see the daemon ready again.
func TestNotifier_NoReadyAfterStopping(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "")
	n := daemon.NewNotifier(testLogger(t))
	n.Stopping()
	n.Reloading()
	n.Ready()
	n.Stopping() // a marker: the next datagram after the first STOPPING
	for i := range 2 {
		if f := fields(t, sock.next(t)); f["STOPPING"] != "1" {
			t.Fatalf("message %d: got %v, want STOPPING=1 (nothing between)", i+1, f)
		}
	}
}

func TestNotifier_WatchdogOff(t *testing.T) {
	listenNotify(t)
	for _, tc := range []struct{ name, usec, pid string }{
		{"NoUsec", "", ""},
		{"OtherPID", "100000", strconv.Itoa(os.Getpid() + 1)},
		{"BadUsec", "soon", ""},
		{"ZeroUsec", "0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			n := daemon.NewNotifier(nil)
			if got := n.WatchdogInterval(); got != 0 {
				t.Fatalf("WatchdogInterval: got %v, want 0", got)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			n.Run(ctx, func() bool { t.Error("healthy called with the watchdog off"); return true })
		})
	}
}

func TestNotifier_NoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	t.Setenv("WATCHDOG_USEC", "100000")
	n := daemon.NewNotifier(testLogger(t))
	if n.Enabled() || n.WatchdogInterval() != 0 {
		t.Fatalf("got enabled %v interval %v, want a no-op notifier", n.Enabled(), n.WatchdogInterval())
	}
	n.Ready()
	n.Reloading()
	n.Stopping()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Run(ctx, func() bool { t.Error("healthy called without a socket"); return true })
}

// TestNotifier_DeadSocket: a NOTIFY_SOCKET nobody listens on is logged,
// once for a run of failed notifications, not fatal.
func TestNotifier_DeadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	n := daemon.NewNotifier(testLogger(t))
	n.Ready()
	n.Reloading()
	n.Ready()
	n.Stopping()
	if got := strings.Count(logsOf(t), `"msg":"notify systemd failed"`); got != 1 {
		t.Fatalf("%d \"notify systemd failed\" lines for 4 failed notifications, want 1:\n%s", got, logsOf(t))
	}
}

// unitFile parses systemd/otpgate.service into key → values (a key may
// repeat); comments and section headers are skipped.
func unitFile(tb testing.TB) map[string][]string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "systemd", "otpgate.service"))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			tb.Fatalf("unit line %q is not KEY=VALUE", line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// TestSystemdUnit keeps the unit in step with the daemon: what Notifier
// sends, the drain time, where the example config keeps its state.
func TestSystemdUnit(t *testing.T) {
	u := unitFile(t)
	want := map[string]string{
		"Type": "notify", "ExecStart": "/usr/local/bin/otpgate run -config /etc/otpgate/otpgate.yaml",
		"ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure", "DynamicUser": "yes",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "StateDirectory": "otpgate", "ConfigurationDirectory": "otpgate",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet": "",
		"SystemCallFilter": "@system-service", "SystemCallArchitectures": "native",
		"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
		"ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
		"MemoryDenyWriteExecute": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
		"UMask": "0077", "LimitNOFILE": "65536", "MemoryHigh": "1G", "MemoryMax": "1536M", "TasksMax": "4096",
	}
	for k, v := range want {
		if got := u[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s: got %q, want [%q]", k, got, v)
		}
	}
	stop, err := time.ParseDuration(u["TimeoutStopSec"][0])
	if err != nil || stop <= daemon.DrainTimeout+5*time.Second {
		t.Errorf("TimeoutStopSec %q: want well above the %v drain (%v)", u["TimeoutStopSec"], daemon.DrainTimeout, err)
	}
	if wd, err := time.ParseDuration(u["WatchdogSec"][0]); err != nil || wd < 10*time.Second {
		t.Errorf("WatchdogSec %q: want a duration of at least 10s (%v)", u["WatchdogSec"], err)
	}

	// The example config keeps data and secret in the StateDirectory.
	f, err := os.Open(filepath.Join("..", "configs", "otpgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := daemon.ParseConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cfg.DataDir, cfg.SecretFile} {
		if !strings.HasPrefix(p, "/var/lib/otpgate/") {
			t.Errorf("configs/otpgate.yaml: %s is outside StateDirectory /var/lib/otpgate", p)
		}
	}
}

// TestGateway_SystemdNotify runs the wired daemon under a fake systemd:
// READY once serving, watchdog pings, RELOADING then READY around a
// reload, STOPPING at shutdown.
func TestGateway_SystemdNotify(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	sim := startSim(t, smsc.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "otpgate.yaml")
	writeConfig(t, path, configYAML(t, cfgOpts{dir: dir, simAddr: sim.Addr()}))
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	// expect reads datagrams until one has key=value, counting watchdog pings.
	pings := 0
	expect := func(key, value string) {
		t.Helper()
		for i := 0; i < 200; i++ {
			f := fields(t, sock.next(t))
			if f["WATCHDOG"] == "1" {
				pings++
			}
			if f[key] == value {
				return
			}
		}
		t.Fatalf("never got %s=%s", key, value)
	}
	expect("READY", "1")
	expect("WATCHDOG", "1")
	expect("WATCHDOG", "1")
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	expect("RELOADING", "1")
	expect("READY", "1")
	g.stop(t)
	expect("STOPPING", "1")
	if pings < 2 {
		t.Fatalf("got %d watchdog pings, want at least 2", pings)
	}
}
