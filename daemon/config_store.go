package daemon

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/otpgate/otpgate/store/redisstore"
)

// Store backends.
const (
	backendBadger = "badger" // embedded, one node (data_dir)
	backendRedis  = "redis"  // Redis Cluster shared by the nodes of a fleet
)

// StoreConfig is the `store:` section.
type StoreConfig struct {
	// Backend is badger (the default: embedded in data_dir) or redis.
	Backend string      `yaml:"backend"`
	Redis   RedisConfig `yaml:"redis"`
}

// RedisConfig is `store.redis`: where the fleet's Redis Cluster is and how
// writes are made durable.
type RedisConfig struct {
	// Addrs are the cluster's seed nodes (host:port), or one standalone
	// server.
	Addrs        []string `yaml:"addrs"`
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"` // instead of password (secretfiles.go)
	TLS          bool     `yaml:"tls"`
	TLSCAFile    string   `yaml:"tls_ca_file"` // PEM CAs to trust instead of the system's
	// OnShortfall is what a write does when no replica confirms it
	// within WaitTimeout: fail (503, the default) or degrade (log and
	// answer as usual).
	OnShortfall string   `yaml:"on_shortfall"`
	WaitTimeout Duration `yaml:"wait_timeout"` // default 1s
	// Prefix starts every key; gateways that share a cluster but not
	// their data need different prefixes.
	Prefix string `yaml:"prefix"`
	// CallbackLease is how long a node holds the callbacks it claimed
	// for delivery: after it, another node delivers those of a node that
	// died (default 30s).
	CallbackLease Duration `yaml:"callback_lease"`
	// MessageTTL is how long messages and their id index stay in Redis
	// (status, receipts, retries): what the fleet's RAM follows (default
	// 72h, as badger keeps them).
	MessageTTL Duration `yaml:"message_ttl"`
}

// Defaults of store keys.
const (
	defaultRedisWait   = redisstore.DefaultWaitTimeout
	defaultRedisPrefix = redisstore.DefaultPrefix
	maxRedisWait       = time.Minute
)

// setStoreDefaults fills the store keys left out.
func (c *Config) setStoreDefaults() {
	s := &c.Store
	if s.Backend == "" {
		s.Backend = backendBadger
	}
	if s.Redis.OnShortfall == "" {
		s.Redis.OnShortfall = string(redisstore.ShortfallFail)
	}
	if s.Redis.WaitTimeout == 0 {
		s.Redis.WaitTimeout = Duration(defaultRedisWait)
	}
	if s.Redis.Prefix == "" {
		s.Redis.Prefix = defaultRedisPrefix
	}
	if s.Redis.MessageTTL == 0 {
		s.Redis.MessageTTL = Duration(redisstore.DefaultMessageTTL)
	}
	if s.Redis.CallbackLease == 0 {
		s.Redis.CallbackLease = Duration(redisstore.DefaultCallbackLease)
	}
}

// validateStore checks the store: section. The redis keys are checked
// only when the backend is redis.
func (c *Config) validateStore(add adder) {
	s := c.Store
	if !oneOf(s.Backend, backendBadger, backendRedis) {
		add("store.backend", "want badger or redis, got %q", s.Backend)
		return
	}
	if s.Backend != backendRedis {
		return
	}
	r := s.Redis
	if len(r.Addrs) == 0 {
		add("store.redis.addrs", "needs the cluster's seed nodes (host:port), or one standalone server")
	}
	for i, a := range r.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			add(fmt.Sprintf("store.redis.addrs[%d]", i), "want host:port, got %q", shownAddress(a))
		}
	}
	if r.TLSCAFile != "" {
		if !r.TLS {
			add("store.redis.tls_ca_file", "needs tls: true")
		}
		if _, err := loadCAs(r.TLSCAFile); err != nil {
			add("store.redis.tls_ca_file", "%v", err)
		}
	}
	if !oneOf(r.OnShortfall, string(redisstore.ShortfallFail), string(redisstore.ShortfallDegrade)) {
		add("store.redis.on_shortfall", "want fail or degrade, got %q", r.OnShortfall)
	}
	if r.WaitTimeout <= 0 || time.Duration(r.WaitTimeout) > maxRedisWait {
		add("store.redis.wait_timeout", "must be positive and at most %s", maxRedisWait)
	}
	if d := time.Duration(r.MessageTTL); d < 10*time.Minute || d > 30*24*time.Hour {
		add("store.redis.message_ttl", "want between 10m and 720h (a message must outlive its code and its receipt), got %s", d)
	}
	if d := time.Duration(r.CallbackLease); d < time.Second || d > 10*time.Minute {
		add("store.redis.callback_lease", "want between 1s and 10m, got %s", d)
	}
	if strings.ContainsAny(r.Prefix, "{}") {
		add("store.redis.prefix", "must not hold { or } (they make Redis Cluster hash tags)")
	}
}
