package daemon_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp/smsc"
	"github.com/otpgate/otpgate/store"
)

// within returns the next datagram, or false when none comes within d.
func (s *notifySocket) within(tb testing.TB, d time.Duration) (string, bool) {
	tb.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	if err != nil {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			return "", false
		}
		tb.Fatal(err)
	}
	return string(buf[:n]), true
}

// readyz returns the status of GET /readyz.
func readyz(tb testing.TB, url string) int {
	tb.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReadyz polls /readyz until it answers want.
func waitReadyz(tb testing.TB, url string, want int, within time.Duration) {
	tb.Helper()
	for deadline := time.Now().Add(within); readyz(tb, url) != want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("/readyz never answered %d within %v", want, within)
		}
	}
}

// TestGateway_WatchdogWedgedStore wedges the daemon's store (a write that
// never ends holds its writer) under a fake systemd: /readyz goes 503 and
// the watchdog pings stop, so that systemd restarts the daemon; both come
// back once the store moves again.
func TestGateway_WatchdogWedgedStore(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	defer daemon.SetStoreTuning(func(o *store.Options) {
		o.HeartbeatInterval, o.StallTimeout = 50*time.Millisecond, 300*time.Millisecond
	})()
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	for {
		if msg, ok := sock.within(t, 10*time.Second); !ok {
			t.Fatal("no watchdog ping from a healthy daemon")
		} else if msg == "WATCHDOG=1" {
			break
		}
	}

	db := g.d.Store()
	release := make(chan struct{})
	wedged := make(chan struct{})
	var once sync.Once
	go db.UpdateOTP(context.Background(), "wedge", func(*otp.Record, bool) (otp.Change, error) {
		once.Do(func() { close(wedged) })
		<-release
		return otp.Keep, nil
	})
	<-wedged
	waitReadyz(t, g.url, 503, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); db.Live(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("store still live 10s after it wedged")
		}
	}
	// Drain what was sent before the notifier saw it, then listen: no ping
	// for a second, ten watchdog periods.
	for drainUntil := time.Now().Add(200 * time.Millisecond); time.Now().Before(drainUntil); {
		if _, ok := sock.within(t, time.Until(drainUntil)); !ok {
			break
		}
	}
	for quietUntil := time.Now().Add(time.Second); time.Now().Before(quietUntil); {
		msg, ok := sock.within(t, time.Until(quietUntil))
		if !ok {
			break
		}
		if msg == "WATCHDOG=1" {
			close(release)
			t.Fatal("watchdog pinged while the store was wedged")
		}
	}

	close(release)
	for {
		if msg, ok := sock.within(t, 10*time.Second); !ok {
			t.Fatal("no watchdog ping after the store moved again")
		} else if msg == "WATCHDOG=1" {
			break
		}
	}
	waitReadyz(t, g.url, 200, 10*time.Second)
}

// TestGateway_ShutdownBounded: a request that never ends does not hold the
// shutdown: after the drain, and submit_timeout plus the store's deadline,
// Run goes on, says what it left behind, and returns.
func TestGateway_ShutdownBounded(t *testing.T) {
	defer daemon.SetShutdownBounds(100*time.Millisecond, 200*time.Millisecond)()
	entered, never := make(chan struct{}), make(chan struct{})
	defer close(never)
	var once sync.Once
	defer daemon.WrapHandler(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/stuck" {
				h.ServeHTTP(w, r)
				return
			}
			once.Do(func() { close(entered) })
			<-never
		})
	})()
	sim := startSim(t, smsc.Options{})
	logs := &countingHandler{n: map[string]int{}}
	d, err := daemon.New(testConfig(t, cfgOpts{simAddr: sim.Addr(), submitTimout: "1s"}), slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	g := runDaemon(t, d)
	waitReady(t, g.url)
	go func() {
		if resp, err := http.Get(g.url + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	g.stop(t) // fails the test if Run has not returned within 30 s
	if n := logs.count("shutdown going on without requests still running"); n != 1 {
		t.Fatalf("got %d warnings about the stuck request, want 1", n)
	}
}
