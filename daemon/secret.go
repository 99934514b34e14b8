package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// secretHexLen is the length of the secret file's text: 32 random bytes
// in hex.
const secretHexLen = 64

// loadSecret returns the HMAC key of the code hashes kept in the file at
// path, creating the file (0600, 32 random bytes in hex) when it does not
// exist. The key is the file's hex text itself, as it always was, so that
// the hashes stored before keep verifying. A file that is empty, or not 64
// hex digits, is an error naming it: a new key would silently invalidate
// every code in flight, so that is left to the operator.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := createSecret(path); err != nil {
			return nil, fmt.Errorf("daemon: secret_file %s: %w", path, err)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: secret_file %s: %w", path, err)
	}
	key, err := parseSecret(b)
	if err != nil {
		return nil, fmt.Errorf("daemon: secret_file %s: %w", path, err)
	}
	return key, nil
}

// parseSecret checks a secret file's content and returns the key: the 64
// hex digits without the surrounding white space.
func parseSecret(b []byte) ([]byte, error) {
	text := strings.TrimSpace(string(b))
	switch {
	case text == "":
		return nil, errors.New("is empty: restore it from a backup, or delete it to have a new one made " +
			"(codes already sent then fail to verify)")
	case len(text) != secretHexLen:
		return nil, fmt.Errorf("holds %d characters, want %d hex digits (32 bytes, e.g. `openssl rand -hex 32`)",
			len(text), secretHexLen)
	}
	if _, err := hex.DecodeString(text); err != nil {
		return nil, fmt.Errorf("is not hex: want %d hex digits (32 bytes, e.g. `openssl rand -hex 32`)", secretHexLen)
	}
	return []byte(text), nil
}

// createSecret writes a new key to path so that a crash at any point
// leaves either no file or the whole key, durably: the key is written to
// a temporary file in the same directory and fsynced, then linked to path
// (which fails, keeping the other, if another process made path
// meanwhile) and the directory fsynced, so that the name survives a power
// cut too.
func createSecret(path string) (err error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the link, or after a failure
	_, err = f.WriteString(hex.EncodeToString(k[:]) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		// A file system without hard links: rename, which would replace
		// a file made meanwhile; that is the only race left.
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making the names created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
