package store

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errNoFallocate is the error of allocateFile on a filesystem without
// fallocate.
var errNoFallocate = errors.New("fallocate not supported")

// freeBytes is the space of dir's filesystem available to this process.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// allocateFile allocates blocks for the whole of the file at path, keeping
// its size and its data.
func allocateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	for {
		err = unix.Fallocate(int(f.Fd()), 0, 0, fi.Size())
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EOPNOTSUPP) {
		return errNoFallocate
	}
	return err
}

// isNoSpace reports whether err is the filesystem's "full" (or "over
// quota").
func isNoSpace(err error) bool { return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) }
