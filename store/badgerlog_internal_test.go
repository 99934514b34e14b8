package store

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/otpgate/otpgate/internal/syncbuf"
)

// TestOpen_BadgerLogsThroughSlog: the logger badger calls is the store's
// adapter, so its warnings and errors reach the gateway's log (JSON, with
// the store's attributes) instead of stderr, and its chatter below a
// warning is dropped.
func TestOpen_BadgerLogsThroughSlog(t *testing.T) {
	var buf syncbuf.Buffer // badger's goroutines may log while the test reads
	lg := slog.New(slog.NewJSONHandler(&buf, nil)).With("component", "store")
	db, err := Open(t.TempDir(), Options{Logger: lg})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	bl := db.bdb.Opts().Logger
	mark := len(buf.String()) // what Open logged, if anything
	bl.Infof("opened %d tables", 3)
	bl.Debugf("detail")
	if got := buf.String()[mark:]; got != "" {
		t.Fatalf("badger's info and debug lines reached the log: %s", got)
	}
	bl.Warningf("compaction %s\n", "slow")
	bl.Errorf("write failed: %v", "disk")
	logged := []byte(buf.String()[mark:])
	if len(bytes.TrimSpace(logged)) == 0 {
		t.Fatal("badger's warning and error reached no log line: badger's logger is not the store's")
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(logged), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	want := []struct{ level, detail string }{{"WARN", "compaction slow"}, {"ERROR", "write failed: disk"}}
	if len(lines) != len(want) {
		t.Fatalf("got %d log lines (%s), want %d: badger's logger is not the store's", len(lines), logged, len(want))
	}
	for i, w := range want {
		if l := lines[i]; l["level"] != w.level || l["msg"] != "badger" || l["detail"] != w.detail || l["component"] != "store" {
			t.Errorf("line %d: got %v, want level %s, msg badger, detail %q, component store", i, l, w.level, w.detail)
		}
	}
}
