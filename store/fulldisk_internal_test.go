package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/otpgate/otpgate/internal/tmpfstest"
	"golang.org/x/sys/unix"
)

// fullDiskEnv names, in the child process of a full-disk test, the tmpfs
// it works on.
const fullDiskEnv = "OTPGATE_TEST_FULLDISK_DIR"

// inChild runs the test named name in a child process with a tmpfs of size
// bytes, so that a fault (SIGBUS) fails the test instead of killing the
// package's run. It reports whether the caller is the child, and then the
// tmpfs's path.
func inChild(t *testing.T, size int64) (mnt string, child bool) {
	if dir := os.Getenv(fullDiskEnv); dir != "" {
		return dir, true
	}
	if testing.Short() {
		t.Skip("fills a tmpfs: not in -short")
	}
	mnt = tmpfstest.Mount(t, size)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+mnt)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// The Go runtime turns the fault into a crash with exit status 2.
		if bytes.Contains(out, []byte("signal SIGBUS")) {
			t.Fatalf("the store died of SIGBUS on the full disk: a memory-mapped page without a block\n%s", out)
		}
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("child did not pass:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "fulldisk_internal_test.go") {
			t.Log(strings.TrimSpace(line))
		}
	}
	return "", false
}

// TestFullDisk_Store runs the store under a write loop on a small tmpfs
// until its own growth fills it, then lets another file take the rest of
// the space, then frees it. The store must turn the full disk into refused
// writes (ErrNoSpace) and take writes again once space is freed; badger,
// which writes its log and tables through memory maps, must never touch a
// page the filesystem cannot back (SIGBUS).
func TestFullDisk_Store(t *testing.T) {
	if mnt, child := inChild(t, 448<<20); child {
		fullDiskChild(t, mnt)
	}
}

// TestFullDisk_LogAllocated: with the free-space check out of the way,
// commits into the log that Open allocated succeed on a filesystem with
// no byte free (the log never touches a hole), and Close, which would
// flush the memtable through a map, leaves badger open instead.
func TestFullDisk_LogAllocated(t *testing.T) {
	mnt, child := inChild(t, 160<<20)
	if !child {
		return
	}
	dir := filepath.Join(mnt, "data")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	fill(t, filepath.Join(mnt, "fill"))
	db.space.extra.Store(-1 << 40) // the reserve is out of the way
	for i := range 256 {           // 4 MiB: well inside the first memtable
		v := bytes.Repeat([]byte{byte(i)}, 16<<10)
		k := fmt.Sprintf("log/%d", i)
		if err := db.update(context.Background(), func(txn *badger.Txn) error { return txn.Set([]byte(k), v) }); err != nil {
			t.Fatalf("write %d on a full disk into the allocated log: %v", i, err)
		}
	}
	if err := db.Close(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Close on a full disk: got %v, want ErrNoSpace (badger left open)", err)
	}
}

// fill writes the file at path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	if n, err := freeBytes(filepath.Dir(path)); err != nil || n >= 1<<20 {
		t.Fatalf("filesystem not full: %d bytes free (%v)", n, err)
	}
	// Small writes take the last partial chunk.
	for {
		if _, err := f.Write(chunk[:4096]); err != nil {
			break
		}
	}
}

// loadResult counts the outcomes of a write loop.
type loadResult struct {
	ok, refused int
	lastOK      []string // the last key written by each writer
}

// writeLoad runs writers that each write 16 KiB random values under new
// keys until stop returns true for their count of refusals in a row. Every
// error must be a refusal for want of space.
func writeLoad(t *testing.T, db *DB, phase string, writers int, stop func(refusedInARow int) bool) loadResult {
	var (
		mu  sync.Mutex
		res = loadResult{lastOK: make([]string, writers)}
		wg  sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewChaCha8([32]byte{byte(w)}))
			v := make([]byte, 16<<10)
			inARow := 0
			for n := 0; !stop(inARow); n++ {
				for i := 0; i < len(v); i += 8 {
					u := rng.Uint64()
					for j := range 8 {
						v[i+j] = byte(u >> (8 * j))
					}
				}
				k := fmt.Sprintf("load/%s/%d/%d", phase, w, n)
				err := db.update(context.Background(), func(txn *badger.Txn) error { return txn.Set([]byte(k), v) })
				mu.Lock()
				switch {
				case err == nil:
					res.ok++
					res.lastOK[w] = k
					inARow = 0
				case errors.Is(err, ErrNoSpace) && errors.Is(err, ErrUnavailable):
					res.refused++
					inARow++
				default:
					mu.Unlock()
					t.Errorf("%s: writer %d: got %v, want success or ErrNoSpace", phase, w, err)
					return
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return res
}

// quiescent waits until badger has no flush or compaction to do: one
// memtable log left, no level due for compaction, tables unchanged.
func quiescent(t *testing.T, db *DB, dir string) {
	t.Helper()
	var last int64 = -1
	steady := 0
	for deadline := time.Now().Add(60 * time.Second); steady < 3; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("badger still flushing or compacting after 60s")
		}
		mems, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
		busy := len(mems) != 1
		var size int64
		for _, l := range db.bdb.Levels() {
			size += l.Size
			busy = busy || l.Score >= 1
		}
		if busy || size != last {
			steady, last = 0, size
			continue
		}
		steady++
	}
}

// fullDiskChild is TestFullDisk_Store in the child process, on the tmpfs
// at mnt.
func fullDiskChild(t *testing.T, mnt string) {
	dir := filepath.Join(mnt, "data")
	db, err := Open(dir, Options{HeartbeatInterval: 50 * time.Millisecond, StallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	free := func() int64 {
		n, err := freeBytes(mnt)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The rest of the filesystem's users: they leave the reserve and room
	// for a few memtables, so that the store's own growth (a new log,
	// flushed tables) fills the disk while flushes run, and a compaction
	// of level 0 may.
	other := filepath.Join(mnt, "other")
	if err := fallocateFile(other, free()-(baseReserve+112<<20)); err != nil {
		t.Fatal(err)
	}
	firstWAL := newestWAL(t, dir)

	// 1. The store's own writes fill the disk down to the reserve.
	res := writeLoad(t, db, "grow", 4, func(inARow int) bool { return inARow >= 20 })
	t.Logf("own growth: %d writes taken, %d refused, %d MiB free, tables %d MiB", res.ok, res.refused,
		free()>>20, db.tableBytes()>>20)
	if res.ok == 0 || newestWAL(t, dir) == firstWAL {
		t.Fatalf("got %d writes and log %s, want writes that filled a memtable", res.ok, newestWAL(t, dir))
	}
	if err := db.Health(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Health: got %v, want ErrNoSpace", err)
	}
	if !db.Live() {
		t.Fatal("Live: false on a full disk; a restart frees no space")
	}

	// 2. Another file takes every byte left, once badger's flushes and
	// compactions are done (the reserve is theirs while they run).
	quiescent(t, db, dir)
	fill(t, filepath.Join(mnt, "fill"))
	stopAt := time.Now().Add(time.Second)
	full := writeLoad(t, db, "full", 4, func(int) bool { return time.Now().After(stopAt) })
	t.Logf("disk full: %d writes taken, %d refused", full.ok, full.refused)
	if full.ok != 0 || full.refused == 0 {
		t.Fatalf("on a full disk: got %d writes taken, %d refused; want none taken", full.ok, full.refused)
	}
	if !db.Live() || db.Healthy() {
		t.Fatalf("on a full disk: got Live %v Healthy %v, want live and unhealthy", db.Live(), db.Healthy())
	}

	// 3. Space is freed: the heartbeat finds it, writes are taken again.
	for _, p := range []string{filepath.Join(mnt, "fill"), other} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "healthy once space is freed", db.Healthy)
	for i := range 10 {
		k := fmt.Sprintf("again/%d", i)
		if err := db.update(context.Background(), setKey(k, nil)); err != nil {
			t.Fatalf("write after space was freed: %v", err)
		}
	}
	for _, k := range res.lastOK {
		if k != "" && !keyExists(t, db, k) {
			t.Errorf("%s: taken before the disk filled, missing after", k)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// fallocateFile creates the file at path with size bytes allocated.
func fallocateFile(path string, size int64) error {
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

// TestFullDisk_OpenRefused: on a filesystem with less free space than the
// reserve, Open fails with ErrNoSpace before badger maps anything (opening
// flushes the memtables of the last run through maps).
func TestFullDisk_OpenRefused(t *testing.T) {
	mnt, child := inChild(t, 64<<20)
	if !child {
		return
	}
	db, err := Open(filepath.Join(mnt, "data"), Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open on a 64 MiB filesystem: got nil error, want ErrNoSpace")
	}
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "MiB free") {
		t.Fatalf("Open: got %v, want ErrNoSpace with the figures", err)
	}
	t.Log(err)
}
