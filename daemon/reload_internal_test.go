package daemon

import (
	"reflect"
	"testing"
)

// TestRestartOnly: every key tagged reload:"restart" is refused when it
// changes, and only those.
func TestRestartOnly(t *testing.T) {
	base := defaultConfig()
	if ps := restartOnly(&base, &base); len(ps) != 0 {
		t.Fatalf("unchanged config: %v", ps)
	}
	next := base
	next.Listen, next.DataDir, next.SecretFile = "127.0.0.1:1", "/elsewhere", "/elsewhere/secret"
	next.AdminListen, next.Admin.PProf, next.MaxConnections = "", true, 1
	next.SubmitTimeout *= 2 // reloadable
	var got []string
	for _, p := range restartOnly(&base, &next) {
		got = append(got, p.Path)
	}
	want := []string{"listen", "admin_listen", "admin", "max_connections", "data_dir", "secret_file"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
