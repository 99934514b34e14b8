// Package tmpfstest mounts small tmpfs file systems for the tests that
// fill a disk (the store's and the gateway's full-disk tests).
package tmpfstest

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// Mount mounts a tmpfs of size bytes on a temp dir, unmounted in cleanup,
// or skips the test where mounting is not permitted (not root).
func Mount(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		tb.Skipf("a full disk is tested on a small tmpfs, and mounting one is not permitted here (%v): run as root", err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// FreeBytes is the space an unprivileged writer may still use in dir's
// file system.
func FreeBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		tb.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}
