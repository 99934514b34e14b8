package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Secrets may live in files of their own, beside the key that holds them
// inline (as Prometheus does with its _file keys): carriers[].password_file
// clients[].callback_secret_file and store.redis.password_file. The file's content, less a trailing
// newline, is the secret. Such a file is read whenever the configuration
// is (at start and on each reload), so that a rotated file takes effect on
// SIGHUP. Secrets in files let the configuration itself be readable by a
// group of operators while the secrets are not.

// maxSecretFile bounds what is read of a secret file: a secret is short,
// and a path pointing at a large file by mistake must not be slurped.
const maxSecretFile = 64 << 10

// readSecretFiles fills each secret that names a file from that file, and
// records what is wrong (for Validate) and what is risky (for Warnings).
func (c *Config) readSecretFiles() {
	c.fileProblems, c.fileWarnings = nil, nil
	for i := range c.Carriers {
		k := &c.Carriers[i]
		c.readSecretFile(fmt.Sprintf("carriers[%d]", i), "password", &k.Password, k.PasswordFile)
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		c.readSecretFile(fmt.Sprintf("clients[%d]", i), "callback_secret", &cl.CallbackSecret, cl.CallbackSecretFile)
	}
	c.readSecretFile("store.redis", "password", &c.Store.Redis.Password, c.Store.Redis.PasswordFile)
}

// readSecretFile reads file into dst, the secret at prefix.key.
func (c *Config) readSecretFile(prefix, key string, dst *Secret, file string) {
	if file == "" {
		return
	}
	at := prefix + "." + key + "_file"
	if *dst != "" {
		c.fileProblems = append(c.fileProblems, Problem{at, fmt.Sprintf("set together with %s: keep one", key)})
		return
	}
	secret, perm, err := readSecret(file)
	if err != nil {
		c.fileProblems = append(c.fileProblems, Problem{at, err.Error()})
		return
	}
	*dst = Secret(secret)
	if perm&0o004 != 0 {
		c.fileWarnings = append(c.fileWarnings, Problem{at, fmt.Sprintf(
			"%s is readable by every local user (mode %04o), which defeats keeping the secret out of the config: "+
				"chmod o-r it (0600, or 0640 with the group otpgate runs in)", file, perm)})
	}
}

// readSecret returns the content of the secret file at path, less a
// trailing newline, and the file's permission bits.
func readSecret(path string) (string, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err // names the path
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", 0, fmt.Errorf("%s is larger than %d bytes: not a secret file", path, maxSecretFile)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", 0, errors.New(path + " is empty")
	}
	return s, fi.Mode().Perm(), nil
}

// checkConfigFile warns when the configuration file f is readable by every
// local user while it holds secrets inline: they should move to _file keys
// (or the file lose its world read bit).
func (c *Config) checkConfigFile(f *os.File) {
	fi, err := f.Stat()
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	var inline []string
	for i, k := range c.Carriers {
		if k.Password != "" && k.PasswordFile == "" {
			inline = append(inline, fmt.Sprintf("carriers[%d].password", i))
		}
	}
	for i, cl := range c.Clients {
		if cl.CallbackSecret != "" && cl.CallbackSecretFile == "" {
			inline = append(inline, fmt.Sprintf("clients[%d].callback_secret", i))
		}
	}
	if r := c.Store.Redis; r.Password != "" && r.PasswordFile == "" {
		inline = append(inline, "store.redis.password")
	}
	if len(inline) == 0 {
		return
	}
	c.fileWarnings = append(c.fileWarnings, Problem{f.Name(), fmt.Sprintf(
		"readable by every local user (mode %04o) and holds secrets inline (%s): chmod o-r it, "+
			"or move them to password_file / callback_secret_file", fi.Mode().Perm(), strings.Join(inline, ", "))})
}
