package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// tablePager pages out the data blocks of badger's tables (see
// tablePagesInterval in db.go). Only the goroutine that calls release may
// use it.
type tablePager struct {
	dir string
	// blocks caches each table's data-block length (tables never change):
	// file name -> bytes from the start of the file.
	blocks map[string]int64
}

func newTablePager(dir string) *tablePager {
	return &tablePager{dir: dir, blocks: make(map[string]int64)}
}

// release asks the kernel to page out, in every mapping of a badger table
// (a .sst file directly in dir) of this process, the table's data blocks,
// and every mapping of badger's write-ahead logs (.mem files: written,
// synced at each commit, and read back only when badger opens after a
// crash), and returns the bytes it advised. The rest of a table, its block index
// and bloom filter, stays: every read of a key looks at the bloom filters
// of the tables that may hold it, and a filter paged out would be read
// from the disk again, by the store's single writer, within the second.
// Data blocks are read through badger's block cache (in the heap), so a
// block's pages are touched only when it is first read after a while, or
// compacted.
//
// MADV_PAGEOUT never loses data: a clean file page is dropped and read
// again from the file on its next access, and a page that is not a file's
// (should badger have unmapped a table and the range been reused since
// /proc/self/maps was read) is at worst swapped, never cleared. It needs
// Linux 5.4: older kernels answer EINVAL, returned as errNoPageout.
func (p *tablePager) release() (int64, error) {
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer maps.Close()
	var advised int64
	seen := make(map[string]bool, len(p.blocks))
	sc := bufio.NewScanner(maps)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		m, ok := tableMapping(sc.Bytes(), p.dir)
		if !ok || m.offset != 0 {
			continue
		}
		size := m.end - m.start
		if filepath.Ext(m.name) == ".sst" {
			seen[m.name] = true
			n, ok := p.blocks[m.name]
			if !ok {
				if n, err = dataBlocksLen(filepath.Join(p.dir, m.name)); err != nil {
					continue // being written, or gone: the next pass sees it
				}
				p.blocks[m.name] = n
			}
			size = min(uintptr(n), size)
		}
		size &^= uintptr(os.Getpagesize() - 1)
		if size == 0 {
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, size, unix.MADV_PAGEOUT)
		switch errno {
		case 0:
			advised += int64(size)
		case unix.EINVAL:
			return advised, errNoPageout
		case unix.ENOMEM: // unmapped since maps was read
		default:
			return advised, errno
		}
	}
	for name := range p.blocks {
		if !seen[name] {
			delete(p.blocks, name) // compacted away
		}
	}
	return advised, sc.Err()
}

// resident returns the bytes of file pages resident in this process (its
// binary, badger's mapped tables and logs: the third field of
// /proc/self/statm, in pages), or -1 if it cannot be read.
func (p *tablePager) resident() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return -1
	}
	defer f.Close()
	var buf [128]byte
	n, _ := f.Read(buf[:])
	fields := bytes.Fields(buf[:n])
	if len(fields) < 3 {
		return -1
	}
	pages, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// errNoPageout means the kernel does not know MADV_PAGEOUT.
var errNoPageout = errors.New("madvise(MADV_PAGEOUT) not supported by this kernel")

// dataBlocksLen reads the footer of the badger table at path and returns
// where its index starts: the table is its data blocks, then the index,
// then the index's length (4 bytes), a checksum of the index, and the
// checksum's length (4 bytes), both lengths big-endian (badger v4,
// table.initIndex).
func dataBlocksLen(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	u32 := func(at int64) (int64, error) {
		var b [4]byte
		if at < 0 {
			return 0, fmt.Errorf("table %s: footer out of the file", filepath.Base(path))
		}
		if _, err := f.ReadAt(b[:], at); err != nil {
			return 0, err
		}
		return int64(binary.BigEndian.Uint32(b[:])), nil
	}
	sumLen, err := u32(size - 4)
	if err != nil {
		return 0, err
	}
	indexLen, err := u32(size - 4 - sumLen - 4)
	if err != nil {
		return 0, err
	}
	start := size - 4 - sumLen - 4 - indexLen
	if start < 0 {
		return 0, fmt.Errorf("table %s: index out of the file", filepath.Base(path))
	}
	return start, nil
}

// mapping is a line of /proc/self/maps that maps a table or a log.
type mapping struct {
	start, end uintptr
	offset     uint64 // in the file
	name       string // the file's name in dir
}

// tableMapping parses a line of /proc/self/maps ("start-end perms offset
// dev inode path") and reports the mapping when it maps a .sst or .mem
// file of dir.
func tableMapping(line []byte, dir string) (m mapping, ok bool) {
	fields := bytes.Fields(line)
	if len(fields) < 6 {
		return mapping{}, false
	}
	path := string(bytes.TrimSuffix(bytes.Join(fields[5:], []byte(" ")), []byte(" (deleted)")))
	if ext := filepath.Ext(path); ext != ".sst" && ext != ".mem" || filepath.Dir(path) != dir {
		return mapping{}, false
	}
	lo, hi, found := bytes.Cut(fields[0], []byte("-"))
	if !found {
		return mapping{}, false
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	off, err3 := strconv.ParseUint(string(fields[2]), 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || e <= s {
		return mapping{}, false
	}
	return mapping{start: uintptr(s), end: uintptr(e), offset: off, name: filepath.Base(path)}, true
}
