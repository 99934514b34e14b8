package redistest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestWaitUp_PortTaken: a server whose port another process holds exits at
// once, and waitUp says so (errExited, which makes Start try fresh ports)
// without waiting for the start timeout.
func TestWaitUp_PortTaken(t *testing.T) {
	server, cli, err := Binaries()
	if err != nil {
		t.Skip(err.Error())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	nd := &Node{Port: port, Addr: ln.Addr().String(), Dir: filepath.Join(t.TempDir(), "taken")}
	if err := nd.start(server, false, nil); err != nil {
		t.Fatal(err)
	}
	defer nd.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := nd.waitUp(ctx, cli); !errors.Is(err, errExited) {
		t.Fatalf("waitUp: got %v, want errExited", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("waitUp took %s: it waited for the timeout", d)
	}
}
