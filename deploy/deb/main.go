// Command deb builds otpgate's Debian package with nfpm: the binary at
// /usr/bin/otpgate, the systemd unit, the annotated example config as a
// conffile (root:otpgate-config, 0640), the README, the Grafana dashboard
// and the Prometheus alert rules, and the maintainer scripts beside this
// file. It is a module of its own so that nfpm and its dependencies stay
// out of the gateway's module.
//
// From the repository's root:
//
//	go -C deploy/deb run .                 # dist/otpgate_<version>_<arch>.deb
//	go -C deploy/deb run . -arch arm64 -version 1.2.0
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Where the package puts things. The unit's ExecStart is rewritten from the
// repository's /usr/local/bin (a hand install) to BinPath.
const (
	BinPath       = "/usr/bin/otpgate"
	UnitPath      = "/lib/systemd/system/otpgate.service"
	ConfigDir     = "/etc/otpgate"
	ConfigPath    = "/etc/otpgate/otpgate.yaml"
	ConfigGroup   = "otpgate-config"
	unitExecStart = "ExecStart=/usr/local/bin/otpgate "
	modulePath    = "github.com/otpgate/otpgate"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "deb: %v\n", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	root    string // the repository
	out     string // where the .deb goes
	arch    string // GOARCH, also the Debian architecture name for amd64, arm64, 386...
	version string // the package version; empty: from git
	bin     string // an otpgate binary to package instead of building one
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.root, "root", "", "the otpgate repository (default: found above the working directory)")
	fs.StringVar(&o.out, "o", "", "output directory (default: ROOT/dist)")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "target architecture (GOARCH)")
	fs.StringVar(&o.version, "version", "", "package version (default: from git describe, else 0.0.0~git<date>.<commit>)")
	fs.StringVar(&o.bin, "bin", "", "package this otpgate binary instead of building one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.root == "" {
		var err error
		if o.root, err = findRoot("."); err != nil {
			return err
		}
	}
	if o.out == "" {
		o.out = filepath.Join(o.root, "dist")
	}
	path, err := build(o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// findRoot returns the first directory at or above dir whose go.mod is
// otpgate's.
func findRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modFileModule(b) == modulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s module at or above %s: give -root", modulePath, dir)
		}
	}
}

func modFileModule(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	return ""
}

// build writes the package into o.out and returns its path.
func build(o options) (string, error) {
	tmp, err := os.MkdirTemp("", "otpgate-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	commit, when := gitCommit(o.root)
	if o.version == "" {
		o.version = version(o.root, commit, when)
	}
	if err := checkVersion(o.version); err != nil {
		return "", err
	}
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "otpgate")
		if err := goBuild(o.root, o.arch, o.bin); err != nil {
			return "", err
		}
	}
	unit, err := packagedUnit(filepath.Join(o.root, "systemd", "otpgate.service"))
	if err != nil {
		return "", err
	}
	unitFile := filepath.Join(tmp, "otpgate.service")
	if err := os.WriteFile(unitFile, unit, 0o644); err != nil {
		return "", err
	}
	if when.IsZero() {
		when = time.Now()
	}
	info := packageInfo(o, unitFile, when)
	if err := nfpm.PrepareForPackager(nfpm.WithDefaults(info), "deb"); err != nil {
		return "", fmt.Errorf("nfpm: %w", err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.out, deb.Default.ConventionalFileName(info))
	f, err := os.CreateTemp(o.out, ".otpgate-*.deb")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // after a failure; renamed away otherwise
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("nfpm: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// packageInfo describes the package; the maintainer scripts sit beside
// this file.
func packageInfo(o options, unitFile string, mtime time.Time) *nfpm.Info {
	repo := func(p ...string) string { return filepath.Join(append([]string{o.root}, p...)...) }
	root := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode}
	}
	config := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: ConfigGroup, Mode: mode}
	}
	return &nfpm.Info{
		Name:          "otpgate",
		Arch:          o.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "otpgate maintainers <otpgate@users.noreply.github.com>",
		Homepage:      "https://github.com/otpgate/otpgate",
		Description: "SMS OTP gateway: HTTP API to SMPP carriers\n" +
			"otpgate keeps SMPP binds to carriers, sends one-time passwords over them and\n" +
			"verifies them over an HTTP API, with delivery receipts, callbacks, failover\n" +
			"between carriers and Prometheus metrics. The unit runs it under systemd;\n" +
			"edit /etc/otpgate/otpgate.yaml, then `systemctl enable --now otpgate`.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Deb: nfpm.Deb{Predepends: []string{"passwd"}},
			Contents: files.Contents{
				{Source: o.bin, Destination: BinPath, FileInfo: root(0o755)},
				{Source: unitFile, Destination: UnitPath, FileInfo: root(0o644)},
				{Destination: ConfigDir, Type: files.TypeDir, FileInfo: config(0o750)},
				{Source: repo("configs", "otpgate.yaml"), Destination: ConfigPath, Type: files.TypeConfig, FileInfo: config(0o640)},
				{Source: repo("README.md"), Destination: "/usr/share/doc/otpgate/README.md", FileInfo: root(0o644)},
				{Source: repo("deploy", "grafana", "otpgate.json"), Destination: "/usr/share/otpgate/grafana/otpgate.json", FileInfo: root(0o644)},
				{Source: repo("deploy", "prometheus", "otpgate-rules.yaml"), Destination: "/usr/share/otpgate/prometheus/otpgate-rules.yaml", FileInfo: root(0o644)},
			},
			Scripts: nfpm.Scripts{
				PreInstall:  repo("deploy", "deb", "preinst"),
				PostInstall: repo("deploy", "deb", "postinst"),
				PreRemove:   repo("deploy", "deb", "prerm"),
				PostRemove:  repo("deploy", "deb", "postrm"),
			},
		},
	}
}

// packagedUnit is the repository's unit with ExecStart at BinPath.
func packagedUnit(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if n := bytes.Count(b, []byte("\n"+unitExecStart)); n != 1 {
		return nil, fmt.Errorf("%s: want one line starting %q, found %d", path, unitExecStart, n)
	}
	return bytes.Replace(b, []byte("\n"+unitExecStart), []byte("\nExecStart="+BinPath+" "), 1), nil
}

// goBuild builds a static otpgate for linux/arch into out. VCS stamping is
// asked for explicitly (GOFLAGS may turn it off), so that `otpgate
// version` names the commit.
func goBuild(root, arch, out string) error {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// gitCommit returns the checked-out commit's short hash and time, or zero
// values outside a git checkout.
func gitCommit(root string) (string, time.Time) {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%h %ct").Output()
	if err != nil {
		return "", time.Time{}
	}
	hash, ts, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil {
		return "", time.Time{}
	}
	return hash, time.Unix(sec, 0).UTC()
}

// version is the package version: from the nearest v-tag (see
// describedVersion), else 0.0.0~git<date>.<commit>, which sorts before
// any release.
func version(root, commit string, when time.Time) string {
	out, err := exec.Command("git", "-C", root, "describe", "--tags", "--match", "v[0-9]*", "--long").Output()
	if err == nil {
		if v, ok := describedVersion(strings.TrimSpace(string(out))); ok {
			return v
		}
	}
	if commit == "" {
		return "0.0.0~dev"
	}
	return "0.0.0~git" + when.Format("20060102") + "." + commit
}

// describedVersion turns `git describe --long` into a Debian version:
// v1.2.0-0-gabc1234 is 1.2.0, three commits later 1.2.0+git3.abc1234, and
// a pre-release tag v1.3.0-rc1 gives 1.3.0~rc1 (before 1.3.0).
func describedVersion(d string) (string, bool) {
	i := strings.LastIndex(d, "-g")
	if i < 0 {
		return "", false
	}
	base, hash := d[:i], d[i+2:]
	j := strings.LastIndex(base, "-")
	if j < 0 {
		return "", false
	}
	tag, n := strings.ReplaceAll(strings.TrimPrefix(base[:j], "v"), "-", "~"), base[j+1:]
	if n == "0" {
		return tag, true
	}
	return tag + "+git" + n + "." + hash, true
}

// checkVersion refuses what dpkg would: a Debian version starts with a
// digit and holds only alphanumerics and . + ~ (a - would start the
// Debian revision).
func checkVersion(v string) error {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return errors.New("version must start with a digit")
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+~", r)) {
			return fmt.Errorf("version %q: %q is not allowed", v, r)
		}
	}
	return nil
}
