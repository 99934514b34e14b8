// Package redistest starts real Redis servers on loopback for tests: a
// Redis Cluster of masters with one replica each, as production runs it
// (append-only file fsynced at every write, short node timeout), or one
// standalone server. It runs the redis-server and redis-cli binaries found
// on PATH; when they are missing the tests that need them are skipped.
//
// A test binary shares one cluster between its tests: call Main from
// TestMain and Shared from each test. A test that kills nodes starts a
// cluster of its own with New.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NodeTimeout is the cluster-node-timeout of the clusters started here:
// short, so that a failover test does not wait long for a replica to take
// over.
const NodeTimeout = time.Second

// startTimeout bounds how long a cluster may take to come up.
const startTimeout = 60 * time.Second

// Node is one redis-server process.
type Node struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string // its working directory: AOF, nodes.conf, redis.log

	standalone bool
	server     string   // redis-server's path
	args       []string // its arguments
	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process has exited
}

// Cluster is a running Redis Cluster (or, with one node and no replicas, a
// standalone server).
type Cluster struct {
	// Addrs are the addresses of every node, masters first.
	Addrs []string
	Nodes []*Node
	dir   string
}

// Binaries returns the paths of redis-server and redis-cli, or an error
// saying what is missing.
func Binaries() (server, cli string, err error) {
	server, err = exec.LookPath("redis-server")
	if err != nil {
		return "", "", errors.New("redistest: redis-server is not installed (apt-get install redis-server)")
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		return "", "", errors.New("redistest: redis-cli is not installed (apt-get install redis-tools)")
	}
	return server, cli, nil
}

// Start starts a cluster of masters masters with replicas replicas each in
// dir (which must exist) and waits until it serves every slot and every
// replica is in sync. With one master it starts a standalone server
// instead, with replicas replicas of it.
func Start(dir string, masters, replicas int) (*Cluster, error) {
	var err error
	for attempt := range startAttempts {
		sub := dir
		if attempt > 0 {
			sub = filepath.Join(dir, fmt.Sprintf("retry%d", attempt))
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return nil, fmt.Errorf("redistest: %w", err)
			}
		}
		var c *Cluster
		if c, err = startOnce(sub, masters, replicas); err == nil || !errors.Is(err, errExited) {
			return c, err
		}
	}
	return nil, err
}

// startAttempts bounds the starts on fresh ports after a server exited at
// once (another process took its port between freePorts and its bind).
const startAttempts = 3

// errExited means a server exited before it answered.
var errExited = errors.New("redistest: redis-server exited at start (port taken?)")

func startOnce(dir string, masters, replicas int) (*Cluster, error) {
	server, cli, err := Binaries()
	if err != nil {
		return nil, err
	}
	if masters < 1 || replicas < 0 {
		return nil, fmt.Errorf("redistest: %d masters, %d replicas", masters, replicas)
	}
	standalone := masters == 1
	if !standalone && masters < 3 {
		return nil, errors.New("redistest: a cluster needs 3 masters at least")
	}
	c := &Cluster{dir: dir}
	n := masters * (1 + replicas)
	ports, err := freePorts(n, !standalone)
	if err != nil {
		return nil, err
	}
	for i, port := range ports {
		nd := &Node{Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: filepath.Join(dir, fmt.Sprintf("node%d-%d", i, port))}
		var replicaOf *Node
		if standalone && i > 0 {
			replicaOf = c.Nodes[0]
		}
		if err := nd.start(server, !standalone, replicaOf); err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, nd)
		c.Addrs = append(c.Addrs, nd.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, nd := range c.Nodes {
		if err := nd.waitUp(ctx, cli); err != nil {
			c.Close()
			return nil, err
		}
	}
	if standalone {
		if err := c.WaitHealthy(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redistest: cluster create: %v: %s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// New starts a cluster of 3 masters with a replica each for t alone, in
// t.TempDir(), and stops it when t ends. It skips t when redis-server is
// not installed.
func New(t testing.TB) *Cluster {
	t.Helper()
	if _, _, err := Binaries(); err != nil {
		t.Skip(err.Error())
	}
	c, err := Start(t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var shared struct {
	c   *Cluster
	err error // why there is no shared cluster
}

// Main runs a test binary's tests (m.Run) with one cluster of 3 masters
// and 3 replicas for all of them, then stops it and exits. Call it from
// TestMain. When redis-server is not installed the tests still run, and
// Shared skips those that need the cluster.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, _, err := Binaries(); err != nil {
		shared.err = err
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	c, err := Start(dir, 3, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	shared.c = c
	return m.Run()
}

// Shared returns the cluster that Main started. It skips t when
// redis-server is not installed, and fails it when TestMain does not call
// Main.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if shared.c == nil {
		if shared.err != nil {
			t.Skip(shared.err.Error())
		}
		t.Fatal("redistest: Shared without redistest.Main in TestMain")
	}
	return shared.c
}

// Close stops every node (SIGTERM, then SIGKILL after 10 s) and waits for
// them. The cluster's files are left in its directory.
func (c *Cluster) Close() error {
	var wg sync.WaitGroup
	for _, nd := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.Stop()
		}()
	}
	wg.Wait()
	return nil
}

// Flush removes every key from every master (replicas follow).
func (c *Cluster) Flush() error {
	_, cli, err := Binaries()
	if err != nil {
		return err
	}
	for _, nd := range c.Nodes {
		if role, _ := nd.info(cli, "replication", "role"); role != "master" {
			continue
		}
		if out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(nd.Port), "FLUSHALL").CombinedOutput(); err != nil {
			return fmt.Errorf("redistest: flushall %s: %v: %s", nd.Addr, err, out)
		}
	}
	return nil
}

// WaitHealthy waits until every running node says the cluster is ok and
// every running replica's link to its master is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	_, cli, err := Binaries()
	if err != nil {
		return err
	}
	var last string
	for {
		last = ""
		for _, nd := range c.Nodes {
			if !nd.Running() {
				continue
			}
			if !nd.standalone {
				if st, err := nd.field(cli, []string{"CLUSTER", "INFO"}, "cluster_state"); err != nil || st != "ok" {
					last = fmt.Sprintf("%s: cluster_state %q %v", nd.Addr, st, err)
					break
				}
			}
			role, err := nd.info(cli, "replication", "role")
			if err != nil {
				last = fmt.Sprintf("%s: %v", nd.Addr, err)
				break
			}
			if role == "slave" {
				if link, _ := nd.info(cli, "replication", "master_link_status"); link != "up" {
					last = nd.Addr + ": replica link " + link
					break
				}
			}
		}
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: cluster not healthy: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Masters returns the nodes that are masters now.
func (c *Cluster) Masters() []*Node {
	_, cli, err := Binaries()
	if err != nil {
		return nil
	}
	var out []*Node
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		if role, _ := nd.info(cli, "replication", "role"); role == "master" {
			out = append(out, nd)
		}
	}
	return out
}

// CLI runs redis-cli against nd with args and returns its output.
func (nd *Node) CLI(args ...string) (string, error) {
	_, cli, err := Binaries()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(nd.Port)}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("redistest: redis-cli %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// info returns field of the INFO section of nd.
func (nd *Node) info(cli, section, field string) (string, error) {
	return nd.field(cli, []string{"INFO", section}, field)
}

// field returns the value of "field:value" in the output of command.
func (nd *Node) field(cli string, command []string, field string) (string, error) {
	out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(nd.Port)}, command...)...).Output()
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no %s in %s", field, strings.Join(command, " "))
}

// start runs redis-server for nd: a cluster node, or a standalone server
// (a replica of replicaOf when that is set).
func (nd *Node) start(server string, cluster bool, replicaOf *Node) error {
	nd.standalone = !cluster
	if err := os.MkdirAll(nd.Dir, 0o700); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	args := []string{
		"--port", strconv.Itoa(nd.Port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--daemonize", "no", "--dir", nd.Dir, "--logfile", "redis.log", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always",
		"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
	}
	if replicaOf != nil {
		args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(replicaOf.Port))
	}
	if cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout/time.Millisecond)))
	}
	nd.server, nd.args = server, args
	return nd.run()
}

// run starts nd's process with the arguments of its first start.
func (nd *Node) run() error {
	cmd := exec.Command(nd.server, nd.args...)
	cmd.Dir = nd.Dir
	// The servers die with the test binary, even when it is killed on a
	// timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, make(chan struct{})
	done := nd.done
	nd.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// Restart starts nd again after Kill or Stop, on its port and with its
// files: a cluster node rejoins the cluster (as a replica when its replica
// took over meanwhile).
func (nd *Node) Restart() error {
	if nd.Running() {
		return errors.New("redistest: restart of a running node")
	}
	return nd.run()
}

// Running reports whether nd's process is running.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.done == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// Kill kills nd with SIGKILL, as a machine dying would, and waits for it.
func (nd *Node) Kill() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Stop stops nd with SIGTERM (SIGKILL after 10 s) and waits for it.
func (nd *Node) Stop() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitUp waits until nd answers PING; it fails with errExited at once
// when nd's process has exited.
func (nd *Node) waitUp(ctx context.Context, cli string) error {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited := make(chan struct{})
	go func() {
		select {
		case <-done:
			close(exited)
			cancel()
		case <-ctx.Done():
		}
	}()
	err := waitPing(ctx, cli, nd.Addr)
	select {
	case <-exited:
		if err != nil {
			return fmt.Errorf("%w: %s", errExited, nd.Addr)
		}
	default:
	}
	return err
}

// waitPing waits until the server at addr answers PING.
func waitPing(ctx context.Context, cli, addr string) error {
	host, port, _ := net.SplitHostPort(addr)
	for {
		out, err := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "PING").Output()
		if err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: %s does not answer: %v", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts returns n ports that are free now, and whose cluster bus ports
// (port + 10000) are free too when bus is set. Another process may take one
// before the server binds it: that server exits, and Start tries again
// on fresh ports.
func freePorts(n int, bus bool) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("redistest: no free ports")
		}
		p := 20000 + rand.IntN(25000)
		if seen[p] || !portFree(p) || (bus && !portFree(p+10000)) {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
