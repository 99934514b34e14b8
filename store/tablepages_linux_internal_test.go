package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestTableMapping(t *testing.T) {
	const dir = "/var/lib/otpgate"
	cases := []struct {
		line string
		want mapping
		ok   bool
	}{
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst", mapping{0x7f1c2a000000, 0x7f1c2a400000, 0, "000012.sst"}, true},
		{"7f1c2a000000-7f1c2a400000 r--s 00001000 fe:01 1234 /var/lib/otpgate/000012.sst (deleted)", mapping{0x7f1c2a000000, 0x7f1c2a400000, 0x1000, "000012.sst"}, true},
		{"7f1c2a000000-7f1c2a400000 rw-s 00000000 fe:01 1234 /var/lib/otpgate/00003.mem", mapping{0x7f1c2a000000, 0x7f1c2a400000, 0, "00003.mem"}, true},
		{"7f1c2a000000-7f1c2a400000 rw-s 00000000 fe:01 1234 /var/lib/otpgate/000001.vlog", mapping{}, false},
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/other/000012.sst", mapping{}, false},
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/sub/000012.sst", mapping{}, false},
		{"7f1c2a000000-7f1c2a400000 rw-p 00000000 00:00 0 ", mapping{}, false},
		{"7f1c2a000000-7f1c2a400000 rw-p 00000000 00:00 0", mapping{}, false},
		{"zz-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst", mapping{}, false},
		{"7f1c2a400000-7f1c2a000000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst", mapping{}, false},
		{"7f1c2a000000-7f1c2a400000 r--s 0000zz00 fe:01 1234 /var/lib/otpgate/000012.sst", mapping{}, false},
	}
	for _, c := range cases {
		m, ok := tableMapping([]byte(c.line), dir)
		if m != c.want || ok != c.ok {
			t.Errorf("tableMapping(%q) = %+v, %v; want %+v, %v", c.line, m, ok, c.want, c.ok)
		}
	}
	// A directory with a space in its name.
	if m, ok := tableMapping([]byte("1000-2000 r--s 0 fe:01 1 /data/otp gate/000001.sst"), "/data/otp gate"); !ok || m.name != "000001.sst" {
		t.Errorf("a path with a space: %+v, %v", m, ok)
	}
}

// mappedRSS is the resident size of this process's mappings of dir's files
// named *ext, from /proc/self/smaps.
func mappedRSS(t *testing.T, dir, ext string) (rss int64, mappings int) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) == 0 {
			continue
		}
		if !bytes.HasSuffix(fields[0], []byte(":")) { // a mapping's header line
			m, ok := tableMapping(sc.Bytes(), dir)
			in = ok && filepath.Ext(m.name) == ext
			if in {
				mappings++
			}
			continue
		}
		if in && string(fields[0]) == "Rss:" && len(fields) > 1 {
			kb, err := strconv.ParseInt(string(fields[1]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			rss += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rss, mappings
}

// openWithTables opens a store in a temporary directory whose tables hold
// 24 MB that do not compress, none of it read yet, and returns it, the
// directory as /proc/self/maps names it.
func openWithTables(t *testing.T) (db *DB, real string) {
	t.Helper()
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1024)
	for b := range 24 {
		err := db.update(context.Background(), func(txn *badger.Txn) error {
			for i := range 1024 {
				rand.Read(value)
				if err := txn.Set([]byte(fmt.Sprintf("t/%02d/%04d", b, i)), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil { // flushes the memtables to tables
		t.Fatal(err)
	}
	if db, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if real, err = filepath.EvalSymlinks(dir); err != nil {
		t.Fatal(err)
	}
	return db, real
}

// readTables reads back every value openWithTables wrote and returns their
// bytes.
func readTables(t *testing.T, db *DB) (n int) {
	t.Helper()
	err := db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("t/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(func(v []byte) error { n += len(v); return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReleaseTablePages fills tables with 24 MB that do not compress, reads
// them all back through the store's badger, and checks that their pages,
// resident after the reads, are no longer once released.
func TestReleaseTablePages(t *testing.T) {
	db, real := openWithTables(t)
	defer func() { db.Close() }()
	if n := readTables(t, db); n != 24<<20 {
		t.Fatalf("read %d bytes of values, want %d", n, 24<<20)
	}
	if db.pager.dir != real {
		t.Fatalf("pager's dir = %q, want %q", db.pager.dir, real)
	}
	// Where the data blocks end, read from each table's footer, agrees
	// with badger's own figures: its "on disk size" is the data blocks and
	// the index.
	var indexes int64
	for _, ti := range db.bdb.Tables() {
		n, err := dataBlocksLen(filepath.Join(real, fmt.Sprintf("%06d.sst", ti.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if n <= 0 || n+int64(ti.IndexSz) != int64(ti.OnDiskSize) {
			t.Fatalf("table %d: %d bytes of data blocks, %d of index, %d in all", ti.ID, n, ti.IndexSz, ti.OnDiskSize)
		}
		indexes += int64(ti.IndexSz)
	}
	before, mappings := tableRSS(t, real)
	if mappings == 0 || before < 8<<20 {
		t.Fatalf("after reading 24 MB: %d table mappings with %d bytes resident; want some, with at least 8 MB", mappings, before)
	}
	advised, err := db.pager.release()
	if err == errNoPageout {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	after, _ := tableRSS(t, real)
	t.Logf("%d table mappings: %d bytes resident before the release, %d advised, %d resident after (indexes: %d bytes)",
		mappings, before, advised, after, indexes)
	if advised < before-indexes-int64(mappings*os.Getpagesize()) || after > indexes+int64(2*mappings*os.Getpagesize()) {
		t.Fatalf("released: advised %d bytes; resident %d before, %d after; indexes %d bytes", advised, before, after, indexes)
	}
	if after == 0 {
		t.Fatal("the indexes were paged out too")
	}
	// The data is all there, read back from the files.
	if n := readTables(t, db); n != 24<<20 {
		t.Fatalf("read %d bytes of values after the release, want %d", n, 24<<20)
	}
	// Through the store's own loop step, with the pages resident again (a
	// new DB: the reads above came from badger's block cache).
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(real, Options{}); err != nil {
		t.Fatal(err)
	}
	readTables(t, db)
	again, _ := tableRSS(t, real)
	if again < 8<<20 {
		t.Fatalf("after reading again: %d bytes resident, want the pages back", again)
	}
	if !db.releaseTablePages() {
		t.Fatal("releaseTablePages reported it is unsupported")
	}
	if last, _ := tableRSS(t, real); last > again/4 {
		t.Fatalf("DB.releaseTablePages: %d bytes resident before, %d after", again, last)
	}
}

// TestRun_ReleasesTablePagesOnGrowth: Run releases the table pages as soon
// as the process's resident file pages have grown by the schedule's growth,
// not only once its interval has passed (here an hour away).
func TestRun_ReleasesTablePagesOnGrowth(t *testing.T) {
	db, real := openWithTables(t)
	defer func() { db.Close() }()
	if _, err := db.pager.release(); err == errNoPageout {
		t.Skip(err)
	}
	low := db.pager.resident()
	if low <= 0 {
		t.Fatalf("resident file pages: %d bytes, want some", low)
	}
	const growth = 4 << 20 // the reads bring in about 10 MB
	db.pages = pagesSchedule{every: time.Hour, growth: growth, last: time.Now(), low: low}
	readTables(t, db)
	grown, _ := tableRSS(t, real)
	if now := db.pager.resident(); grown < 2*growth || now-low < 2*growth {
		t.Fatalf("after reading 24 MB: tables %d bytes resident, file pages %d -> %d bytes; want the growth seen", grown, low, now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rss, _ := tableRSS(t, real)
		if rss <= grown/4 {
			t.Logf("tables: %d bytes resident after the reads, %d after Run's release", grown, rss)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tables %d bytes resident 10 s after the reads (%d then); want them released at Run's next check", rss, grown)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// walChildEnv names, in the child process of TestReleaseWALPages, the
// directory it writes to.
const walChildEnv = "OTPGATE_TEST_WAL_CHILD_DIR"

// TestReleaseWALPages: badger's write-ahead log is paged out with the
// tables, and a process that dies (no Close) after that loses nothing: the
// next Open replays the log from the file.
func TestReleaseWALPages(t *testing.T) {
	write := func(db *DB, from, to int) {
		t.Helper()
		for b := from; b < to; b++ {
			err := db.update(context.Background(), func(txn *badger.Txn) error {
				for i := range 256 {
					if err := txn.Set(fmt.Appendf(nil, "w/%03d/%03d", b, i), bytes.Repeat([]byte{byte(b)}, 1000)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if dir := os.Getenv(walChildEnv); dir != "" {
		db, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		write(db, 0, 8) // 2 MB, in the log (far below a memtable)
		real, _ := filepath.EvalSymlinks(dir)
		if rss, n := walRSS(t, real); n == 0 || rss < 1<<20 {
			t.Fatalf("%d log mappings with %d bytes resident, want at least 1 MB", n, rss)
		}
		if _, err := db.pager.release(); err != nil {
			t.Skip(err)
		}
		if rss, _ := walRSS(t, real); rss > 64<<10 {
			t.Fatalf("after the release, %d bytes of the log resident", rss)
		}
		write(db, 8, 12) // after the release, at the log's tail
		os.Exit(0)       // dies without Close: the memtable is only in the log
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), walChildEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || bytes.Contains(out, []byte("FAIL")) || bytes.Contains(out, []byte("SKIP")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("w/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var b, i int
			if _, err := fmt.Sscanf(string(it.Item().Key()), "w/%03d/%03d", &b, &i); err != nil {
				return err
			}
			err := it.Item().Value(func(v []byte) error {
				if !bytes.Equal(v, bytes.Repeat([]byte{byte(b)}, 1000)) {
					return fmt.Errorf("key %s: wrong value", it.Item().Key())
				}
				return nil
			})
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 12*256 {
		t.Fatalf("replayed %d entries, want %d", n, 12*256)
	}
}

// walRSS is the resident size of this process's mappings of dir's logs.
func walRSS(t *testing.T, dir string) (rss int64, mappings int) {
	t.Helper()
	return mappedRSS(t, dir, ".mem")
}

// tableRSS is the resident size of this process's mappings of dir's
// tables.
func tableRSS(t *testing.T, dir string) (rss int64, mappings int) {
	t.Helper()
	return mappedRSS(t, dir, ".sst")
}
