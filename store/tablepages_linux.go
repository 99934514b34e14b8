package store

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// releaseTablePages asks the kernel to page out every mapping of a badger
// table (a .sst file directly in dir) of this process, and returns the
// bytes of mappings it advised. See tablePagesInterval in db.go for why.
//
// MADV_PAGEOUT never loses data: a clean file page is dropped and read
// again from the file on its next access, and a page that is not a file's
// (should badger have unmapped a table and the range been reused since
// /proc/self/maps was read) is at worst swapped, never cleared. It needs
// Linux 5.4: older kernels answer EINVAL, returned as errNoPageout.
func releaseTablePages(dir string) (int64, error) {
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer maps.Close()
	var advised int64
	sc := bufio.NewScanner(maps)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		start, end, ok := tableMapping(sc.Bytes(), dir)
		if !ok {
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_PAGEOUT)
		switch errno {
		case 0:
			advised += int64(end - start)
		case unix.EINVAL:
			return advised, errNoPageout
		case unix.ENOMEM: // unmapped since maps was read
		default:
			return advised, errno
		}
	}
	return advised, sc.Err()
}

// errNoPageout means the kernel does not know MADV_PAGEOUT.
var errNoPageout = errors.New("madvise(MADV_PAGEOUT) not supported by this kernel")

// tableMapping parses a line of /proc/self/maps ("start-end perms offset
// dev inode path") and reports the range when it maps a .sst file of dir.
func tableMapping(line []byte, dir string) (start, end uintptr, ok bool) {
	fields := bytes.Fields(line)
	if len(fields) < 6 {
		return 0, 0, false
	}
	path := string(bytes.TrimSuffix(bytes.Join(fields[5:], []byte(" ")), []byte(" (deleted)")))
	if filepath.Ext(path) != ".sst" || filepath.Dir(path) != dir {
		return 0, 0, false
	}
	lo, hi, found := bytes.Cut(fields[0], []byte("-"))
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
