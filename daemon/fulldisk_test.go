package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/tmpfstest"
	"github.com/otpgate/otpgate/smpp/smsc"
	"golang.org/x/sys/unix"
)

// files returns the names in dir that end in ext, sorted.
func files(tb testing.TB, dir, ext string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestFullDisk_Gateway runs the otpgate binary with its data_dir on a small
// tmpfs under send-otp load, and fills the filesystem: first down to less
// than the store's reserve, then, once badger is idle, to the last byte.
// The process must not die (badger maps its files: a page the filesystem
// cannot back is SIGBUS), send-otp must fail, /readyz must answer 503; once
// the space is freed, /readyz is 200 and sends succeed again.
func TestFullDisk_Gateway(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs: not in -short")
	}
	mnt := tmpfstest.Mount(t, 192<<20)
	bin := buildOtpgate(t)
	sim := startSim(t, smsc.Options{ReceiptDelay: 5 * time.Millisecond})
	dir := t.TempDir()
	data := filepath.Join(mnt, "data")
	admin := deadAddr(t) // a free port, for /metrics
	cfgPath := writeProcConfig(t, dir, admin, data, sim.Addr())
	p := startOtpgate(t, bin, cfgPath)
	alive := func(when string) {
		t.Helper()
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("%s: otpgate died: %v", when, err)
		default:
		}
	}

	// Load: every answer is counted by phase.
	type counts struct{ ok, failed, other atomic.Int64 }
	var (
		phase  atomic.Pointer[counts]
		stop   = make(chan struct{})
		client = benchClient()
	)
	phase.Store(new(counts))
	url := func(int) string { return p.url }
	wg := sendUntil(client, 4, "+91-9", url, stop, func(s sendOutcome) bool {
		c := phase.Load()
		switch {
		case s.err == nil && s.code == 200:
			c.ok.Add(1)
		case s.err == nil && s.code == 503:
			c.failed.Add(1)
		default:
			c.other.Add(1)
		}
		if s.err != nil {
			time.Sleep(10 * time.Millisecond)
		}
		return true
	})
	defer func() { close(stop); wg.Wait() }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
		}
	}
	before := phase.Load()
	waitFor("sends answered 200", func() bool { return before.ok.Load() >= 50 })

	// 1. Others fill the disk to below the store's reserve (about 137 MiB
	// plus its tables), leaving room for what badger has in flight.
	low := new(counts)
	phase.Store(low)
	if err := fallocate(filepath.Join(mnt, "other"), tmpfstest.FreeBytes(t, mnt)-40<<20); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, p.url, 503, 30*time.Second)
	waitFor("sends refused", func() bool { return low.failed.Load() >= 20 })
	alive("below the reserve")

	// 2. Once badger has no flush or compaction running, the last byte.
	var ssts []string
	steady := 0
	waitFor("badger idle", func() bool {
		now := files(t, data, ".sst")
		if len(files(t, data, ".mem")) == 1 && slices.Equal(now, ssts) {
			steady++
		} else {
			steady = 0
		}
		ssts = now
		return steady >= 50 // 1 s
	})
	fill(t, filepath.Join(mnt, "fill"))
	full := new(counts)
	phase.Store(full)
	waitFor("sends refused on a full disk", func() bool { return full.failed.Load() >= 5 })
	// The send is counted durably before its submit: a store that cannot
	// write lets no SMS out (those already past the count finished above).
	accepted := sim.Stats().Accepted
	waitFor("more sends refused on a full disk", func() bool { return full.failed.Load() >= 50 })
	if n := sim.Stats().Accepted - accepted; n != 0 {
		t.Fatalf("%d SMS reached the carrier while the disk was full, want 0", n)
	}
	time.Sleep(time.Second) // and a heartbeat or so
	alive("disk full")
	// The alert rules see it: failed writes are counted.
	_, text := call(t, "GET", "http://"+admin+"/metrics", "", "")
	if n := metricValue(t, text, "otpgate_store_write_failures_total"); n == 0 {
		t.Error("otpgate_store_write_failures_total is 0 on a full disk")
	}
	if code := readyz(t, p.url); code != 503 {
		t.Fatalf("/readyz on a full disk: got %d, want 503", code)
	}
	if n := full.ok.Load(); n != 0 {
		t.Fatalf("%d sends answered 200 on a full disk", n)
	}

	// 3. Space is freed.
	for _, f := range []string{"fill", "other"} {
		if err := os.Remove(filepath.Join(mnt, f)); err != nil {
			t.Fatal(err)
		}
	}
	after := new(counts)
	phase.Store(after)
	waitReadyz(t, p.url, 200, 30*time.Second)
	waitFor("sends answered 200 after space was freed", func() bool { return after.ok.Load() >= 20 })
	alive("after space was freed")
	t.Logf("sends: %d ok before; %d failed below the reserve; %d failed on a full disk; %d ok after",
		before.ok.Load(), low.failed.Load(), full.failed.Load(), after.ok.Load())
	for _, c := range []*counts{before, low, full, after} {
		if n := c.other.Load(); n > 0 {
			t.Errorf("%d sends got neither 200 nor a refusal", n)
		}
	}

	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("exit %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("otpgate did not stop within 30s of SIGTERM")
	}
}

// fallocate creates the file at path with size bytes allocated.
func fallocate(path string, size int64) error {
	if size <= 0 {
		return fmt.Errorf("%s: no room for it (%d bytes)", path, size)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fallocate(int(f.Fd()), 0, 0, size)
}

// fill writes the file at path until its filesystem is full.
func fill(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{1 << 20, 4096} {
		chunk := make([]byte, n)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					tb.Fatal(err)
				}
				break
			}
		}
	}
}
