package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// FleetConfig is the `fleet:` section: how this node finds its place among
// the nodes that share a Redis store (store.backend: redis).
type FleetConfig struct {
	// NodeID names this node in the fleet (bind leases, node table,
	// callback leases); default the host name. It must be unique in the
	// fleet.
	NodeID string `yaml:"node_id"`
	// InternalListen is where this node takes submits forwarded by nodes
	// that hold no bind of a carrier (mutual TLS, InternalTLS); "" means
	// this node neither takes nor forwards submits.
	InternalListen string            `yaml:"internal_listen"`
	InternalTLS    InternalTLSConfig `yaml:"internal_tls"`
	// BindLease is how long a node's lease on a carrier's bind slot lasts
	// without renewal (renewed every third of it): how long a dead node's
	// binds stay unused before another node takes them over.
	BindLease Duration `yaml:"bind_lease"`
}

// InternalTLSConfig is `fleet.internal_tls`: this node's certificate (both
// as server and as client) and the CA that signed every node's.
type InternalTLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// Fleet defaults and bounds.
const (
	defaultBindLease = 10 * time.Second
	// The unbind after a lost lease has a third of it before another
	// node may bind: at least the SMPP unbind's own wait (1 s).
	minBindLease = 3 * time.Second
	maxBindLease = 5 * time.Minute
)

// setFleetDefaults fills the fleet keys left out.
func (c *Config) setFleetDefaults() {
	f := &c.Fleet
	if f.NodeID == "" {
		if h, err := os.Hostname(); err == nil {
			f.NodeID = h
		}
	}
	if f.BindLease == 0 {
		f.BindLease = Duration(defaultBindLease)
	}
}

// validateFleet checks the fleet: section.
func (c *Config) validateFleet(add adder) {
	f := c.Fleet
	if c.Store.Backend != backendRedis {
		if f.InternalListen != "" {
			add("fleet.internal_listen", "needs store.backend: redis (a fleet shares its store)")
		}
		return
	}
	if f.NodeID == "" {
		add("fleet.node_id", "empty, and the host name is unknown: set one")
	}
	if len(f.NodeID) > 64 || strings.ContainsAny(f.NodeID, " |#{}\t\n") {
		add("fleet.node_id", "want at most 64 characters without spaces, '|', '#', '{' or '}', got %q", f.NodeID)
	}
	if d := time.Duration(f.BindLease); d < minBindLease || d > maxBindLease {
		add("fleet.bind_lease", "want between %s and %s, got %s", minBindLease, maxBindLease, d)
	}
	t := f.InternalTLS
	if f.InternalListen == "" {
		if t != (InternalTLSConfig{}) {
			add("fleet.internal_tls", "set but fleet.internal_listen is empty")
		}
		return
	}
	if _, port, err := net.SplitHostPort(f.InternalListen); err != nil || port == "" {
		add("fleet.internal_listen", "want host:port, got %q", f.InternalListen)
	}
	if t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" {
		add("fleet.internal_tls", "cert_file, key_file and ca_file are all needed: nodes talk mutual TLS")
		return
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		add("fleet.internal_tls.cert_file", "%v", err)
	}
	if _, err := loadCAs(t.CAFile); err != nil {
		add("fleet.internal_tls.ca_file", "%v", err)
	}
}

// fleetTLS returns the internal port's server and client TLS settings:
// this node's certificate for both, and only certificates signed by the
// fleet's CA accepted on either side.
func fleetTLS(t InternalTLSConfig) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: fleet.internal_tls: %w", err)
	}
	pool, err := loadCAs(t.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: fleet.internal_tls.ca_file: %w", err)
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	client = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: pool}
	return server, client, nil
}
