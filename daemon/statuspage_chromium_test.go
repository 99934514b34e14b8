package daemon_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

const chromiumPath = "/usr/bin/chromium"

// chromium runs headless Chromium on url with the extra flags and returns
// its standard output.
func chromium(t *testing.T, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, chromiumPath, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
	}
	return string(out)
}

// carrierRow returns the DOM of carrier's row of the status page's table.
func carrierRow(t *testing.T, dom, carrier string) string {
	t.Helper()
	i := strings.Index(dom, `<tr id="carrier-`+carrier+`"`)
	if i < 0 {
		t.Fatalf("no row for carrier %s in the page:\n%s", carrier, dom)
	}
	j := strings.Index(dom[i:], "</tr>")
	if j < 0 {
		t.Fatalf("row of carrier %s not closed", carrier)
	}
	return dom[i : i+j]
}

// TestStatusPage_Chromium: the admin port's status page, as headless
// Chromium renders it, shows each configured carrier with its bind state,
// and shows a carrier suspended through the control API as such.
func TestStatusPage_Chromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("the status page test needs %s (Debian's chromium package; .ci/run installs it): %v", chromiumPath, err)
	}
	simA := startSim(t, smsc.Options{SystemID: "carrier-a", Password: "pw-a"})
	simB := startSim(t, smsc.Options{SystemID: "carrier-b", Password: "pw-b"})
	dir := t.TempDir()
	cfg, err := daemon.ParseConfig(strings.NewReader(twoCarrierYAML(t, dir, simA.Addr(), simB.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	waitUntil(t, "a and b bound", func() bool {
		cs := carriers(t, g)
		return cs["a"].BindsUp == 2 && cs["b"].BindsUp == 1
	})
	if code, body := send(t, g, "+91-9800000001"); code != 200 {
		t.Fatalf("send: %d %s", code, body)
	}

	dom := chromium(t, g.admin+"/", "--dump-dom")
	for _, want := range []string{`http-equiv="refresh" content="5"`, `id="readiness">ready<`, "<title>otpgate status</title>",
		`id="backlog">`, `<table id="blocks">`} {
		if !strings.Contains(dom, want) {
			t.Fatalf("page lacks %q:\n%s", want, dom)
		}
	}
	for _, c := range []struct{ name, state, binds string }{
		{"a", ">bound<", "2/2"}, {"b", ">bound<", "1/1"}, {"dead", ">unbound<", "0/1"},
	} {
		row := carrierRow(t, dom, c.name)
		if !strings.Contains(row, c.state) || !strings.Contains(row, ">"+c.binds+"<") {
			t.Fatalf("carrier %s: want %s and %s in its row: %s", c.name, c.state, c.binds, row)
		}
	}
	if row := carrierRow(t, dom, "a"); !strings.Contains(row, "ok 1") {
		t.Fatalf("carrier a's row lacks its submit: %s", row)
	}

	if code, body := call(t, "POST", g.admin+"/carriers/a/suspend", "", ""); code != 200 {
		t.Fatalf("suspend: %d %s", code, body)
	}
	dom = chromium(t, g.admin+"/", "--dump-dom")
	if row := carrierRow(t, dom, "a"); !strings.Contains(row, ">suspended<") || !strings.Contains(row, ">0/2<") {
		t.Fatalf("after suspend, carrier a's row: %s", row)
	}
	if row := carrierRow(t, dom, "b"); !strings.Contains(row, ">bound<") {
		t.Fatalf("after suspending a, carrier b's row: %s", row)
	}

	// Only "/" is the page; other paths stay 404.
	if code, _ := call(t, "GET", g.admin+"/nope", "", ""); code != 404 {
		t.Fatalf("GET /nope: got %d, want 404", code)
	}
	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, g.admin+"/", "--screenshot="+shot, "--window-size=1200,800", "--hide-scrollbars")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
}
