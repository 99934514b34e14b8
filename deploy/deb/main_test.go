package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blakesmith/ar"
)

// entry is one file of a package's archive.
type entry struct {
	mode       int64
	user, grp  string
	dir        bool
	body       string
	executable bool
}

// readDeb returns the members of a .deb (an ar archive) and the entries of
// its control and data tarballs.
func readDeb(t *testing.T, path string) (members []string, control, data map[string]entry) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := ar.NewReader(f)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		members = append(members, name)
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "control.tar.gz":
			control = readTar(t, b)
		case "data.tar.gz":
			data = readTar(t, b)
		}
	}
	return members, control, data
}

func readTar(t *testing.T, gz []byte) map[string]entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		out[name] = entry{mode: h.Mode & 0o7777, user: h.Uname, grp: h.Gname, dir: h.Typeflag == tar.TypeDir,
			body: string(b), executable: h.Mode&0o111 != 0}
	}
}

// TestBuild packages a stand-in binary and reads the package back: its
// files where the unit and the README say, with their owners and modes,
// the config a conffile of the otpgate-config group, the unit's ExecStart
// at /usr/bin, and the maintainer scripts.
func TestBuild(t *testing.T) {
	root, err := findRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "otpgate")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	path, err := build(options{root: root, out: out, arch: "arm64", version: "1.2.0~rc1", bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(out, "otpgate_1.2.0~rc1_arm64.deb"); path != want {
		t.Fatalf("got %s, want %s", path, want)
	}
	members, control, data := readDeb(t, path)
	if got := strings.Join(members, " "); got != "debian-binary control.tar.gz data.tar.gz" {
		t.Fatalf("members: got %s", got)
	}

	for _, want := range []string{"Package: otpgate\n", "Version: 1.2.0~rc1\n", "Architecture: arm64\n", "Pre-Depends: passwd\n"} {
		if !strings.Contains(control["/control"].body, want) {
			t.Errorf("control lacks %q:\n%s", want, control["/control"].body)
		}
	}
	if got := control["/conffiles"].body; got != ConfigPath+"\n" {
		t.Errorf("conffiles: got %q, want %q", got, ConfigPath+"\n")
	}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		e, ok := control["/"+s]
		if !ok || !e.executable || !strings.HasPrefix(e.body, "#!/bin/sh\n") {
			t.Errorf("%s: missing, not executable or not a shell script", s)
		}
	}
	for _, s := range []string{"preinst", "postinst"} {
		if !strings.Contains(control["/"+s].body, "groupadd --system "+ConfigGroup) {
			t.Errorf("%s does not create the group %s", s, ConfigGroup)
		}
	}
	if !strings.Contains(control["/postinst"].body, "if [ -d /run/systemd/system ]; then\n\t\tsystemctl daemon-reload") {
		t.Error("postinst does not reload systemd only when it runs")
	}

	example, err := os.ReadFile(filepath.Join(root, "configs", "otpgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]entry{
		BinPath:                            {mode: 0o755, user: "root", grp: "root", body: "#!/bin/sh\necho stand-in\n"},
		UnitPath:                           {mode: 0o644, user: "root", grp: "root"},
		ConfigDir:                          {mode: 0o750, user: "root", grp: ConfigGroup, dir: true},
		ConfigPath:                         {mode: 0o640, user: "root", grp: ConfigGroup, body: string(example)},
		"/usr/share/doc/otpgate/README.md": {mode: 0o644, user: "root", grp: "root"},
		"/usr/share/otpgate/grafana/otpgate.json":          {mode: 0o644, user: "root", grp: "root"},
		"/usr/share/otpgate/prometheus/otpgate-rules.yaml": {mode: 0o644, user: "root", grp: "root"},
	} {
		got, ok := data[path]
		if !ok {
			t.Errorf("%s: not in the package", path)
			continue
		}
		if got.mode != want.mode || got.user != want.user || got.grp != want.grp || got.dir != want.dir {
			t.Errorf("%s: got %04o %s:%s dir=%v, want %04o %s:%s dir=%v", path, got.mode, got.user, got.grp, got.dir,
				want.mode, want.user, want.grp, want.dir)
		}
		if want.body != "" && got.body != want.body {
			t.Errorf("%s: content differs from the repository's", path)
		}
	}
	unit := data[UnitPath].body
	if !strings.Contains(unit, "\nExecStart=/usr/bin/otpgate run -config /etc/otpgate/otpgate.yaml\n") ||
		strings.Contains(unit, "/usr/local/bin") {
		t.Errorf("unit's ExecStart is not /usr/bin/otpgate:\n%s", unit)
	}
	if !strings.Contains(unit, "SupplementaryGroups="+ConfigGroup+"\n") {
		t.Error("the unit does not add the config group")
	}
}

func TestPackagedUnit_NoExecStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.service")
	if err := os.WriteFile(path, []byte("[Service]\nExecStart=/opt/otpgate run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := packagedUnit(path); err == nil {
		t.Fatal("got nil error for a unit whose ExecStart is elsewhere")
	}
}

func TestDescribedVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.0-0-gabc1234":     "1.2.0",
		"v1.2.0-3-gabc1234":     "1.2.0+git3.abc1234",
		"v1.3.0-rc1-0-gabc1234": "1.3.0~rc1",
		"v1.3.0-rc1-2-gabc1234": "1.3.0~rc1+git2.abc1234",
	} {
		got, ok := describedVersion(in)
		if !ok || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, ok, want)
		}
		if err := checkVersion(got); err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
	if _, ok := describedVersion("abc1234"); ok {
		t.Error("a bare hash: got ok")
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"", "v1.0", "1.0-1", "1.0 beta", "1.0_1"} {
		if checkVersion(v) == nil {
			t.Errorf("%q: got nil error", v)
		}
	}
	for _, v := range []string{"1.0", "0.0.0~git20260101.abc1234", "2.1+git3.ff"} {
		if err := checkVersion(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
}
