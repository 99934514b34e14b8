package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestTableMapping(t *testing.T) {
	const dir = "/var/lib/otpgate"
	cases := []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst", 0x7f1c2a000000, 0x7f1c2a400000, true},
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst (deleted)", 0x7f1c2a000000, 0x7f1c2a400000, true},
		{"7f1c2a000000-7f1c2a400000 rw-s 00000000 fe:01 1234 /var/lib/otpgate/00003.mem", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 rw-s 00000000 fe:01 1234 /var/lib/otpgate/000001.vlog", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/other/000012.sst", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/sub/000012.sst", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 rw-p 00000000 00:00 0 ", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 rw-p 00000000 00:00 0", 0, 0, false},
		{"zz-7f1c2a400000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst", 0, 0, false},
		{"7f1c2a400000-7f1c2a000000 r--s 00000000 fe:01 1234 /var/lib/otpgate/000012.sst", 0, 0, false},
	}
	for _, c := range cases {
		start, end, ok := tableMapping([]byte(c.line), dir)
		if start != c.start || end != c.end || ok != c.ok {
			t.Errorf("tableMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", c.line, start, end, ok, c.start, c.end, c.ok)
		}
	}
	// A directory with a space in its name.
	if _, _, ok := tableMapping([]byte("1000-2000 r--s 0 fe:01 1 /data/otp gate/000001.sst"), "/data/otp gate"); !ok {
		t.Error("a path with a space was not recognised")
	}
}

// tableRSS is the resident size of this process's mappings of dir's tables,
// from /proc/self/smaps.
func tableRSS(t *testing.T, dir string) (rss int64, mappings int) {
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
			_, _, in = tableMapping(sc.Bytes(), dir)
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

// TestReleaseTablePages fills tables with 24 MB that do not compress, reads
// them all back through the store's badger, and checks that their pages,
// resident after the reads, are no longer once released.
func TestReleaseTablePages(t *testing.T) {
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
	defer func() { db.Close() }()
	read := func() (n int) {
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
	if n := read(); n != 24<<20 {
		t.Fatalf("read %d bytes of values, want %d", n, 24<<20)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if db.realDir != real {
		t.Fatalf("realDir = %q, want %q", db.realDir, real)
	}
	before, mappings := tableRSS(t, db.realDir)
	if mappings == 0 || before < 8<<20 {
		t.Fatalf("after reading 24 MB: %d table mappings with %d bytes resident; want some, with at least 8 MB", mappings, before)
	}
	advised, err := releaseTablePages(db.realDir)
	if err == errNoPageout {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	after, _ := tableRSS(t, db.realDir)
	t.Logf("%d table mappings of %d bytes: %d bytes resident before the release, %d after", mappings, advised, before, after)
	if advised < before || after > before/8 {
		t.Fatalf("released: advised %d bytes; resident %d before, %d after", advised, before, after)
	}
	// The data is all there, read back from the files.
	if n := read(); n != 24<<20 {
		t.Fatalf("read %d bytes of values after the release, want %d", n, 24<<20)
	}
	// Through the store's own loop step, with the pages resident again (a
	// new DB: the reads above came from badger's block cache).
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	read()
	again, _ := tableRSS(t, db.realDir)
	if again < 8<<20 {
		t.Fatalf("after reading again: %d bytes resident, want the pages back", again)
	}
	if !db.releaseTablePages() {
		t.Fatal("releaseTablePages reported it is unsupported")
	}
	if last, _ := tableRSS(t, db.realDir); last > again/4 {
		t.Fatalf("DB.releaseTablePages: %d bytes resident before, %d after", again, last)
	}
}
