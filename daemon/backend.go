package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
	"github.com/otpgate/otpgate/store/redisstore"
)

// storeBackend is what the daemon needs of its store, whichever backend
// store.backend names: the otp ports, and a lifecycle.
type storeBackend interface {
	otp.Store
	otp.ReceiptStore
	otp.CallbackQueue
	otp.MOQueue
	// Run does the store's background work until ctx is done.
	Run(ctx context.Context) error
	// Close releases the store once nothing uses it any more.
	Close() error
	// Health says whether the store takes writes now (readiness).
	Health() error
	// Live says whether a restart could help (false: the watchdog may
	// restart the daemon).
	Live() bool
	// WatchCallbacks calls notify after this node queues a callback,
	// until ctx is done.
	WatchCallbacks(ctx context.Context, notify func()) error
}

var (
	_ storeBackend = (*store.DB)(nil)
	_ storeBackend = (*redisstore.DB)(nil)
)

// redisOpenTimeout bounds connecting to Redis at start.
const redisOpenTimeout = 15 * time.Second

// openStore opens the backend of cfg.Store. With redis it also returns the
// store's fleet-wide rate buckets for the clients' rate limits (nil with
// badger: the limits are the node's own).
func (d *Server) openStore(ctx context.Context, cfg *Config) (storeBackend, otp.Limiter, error) {
	if cfg.Store.Backend != backendRedis {
		so := store.Options{Logger: d.log.With(keyComponent, "store"), WantsCallback: d.wantsCallback,
			PendingDropped: d.pendingDropped}
		d.observeStore(&so)
		if storeTuning != nil {
			storeTuning(&so)
		}
		db, err := store.Open(cfg.DataDir, so)
		if err != nil {
			return nil, nil, fmt.Errorf("daemon: %w", err)
		}
		return db, nil, nil
	}
	opts, err := redisOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts.Logger, opts.WantsCallback, opts.PendingDropped = d.log.With(keyComponent, "store"), d.wantsCallback, d.pendingDropped
	if m := d.Metrics; m != nil {
		opts.ShortfallSeen = m.StoreShortfall
	}
	if redisTuning != nil {
		redisTuning(&opts)
	}
	octx, cancel := context.WithTimeout(ctx, redisOpenTimeout)
	defer cancel()
	db, err := redisstore.Open(octx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: %w", err)
	}
	return db, db, nil
}

// redisOptions are the redis backend's connection and durability
// settings of cfg.
func redisOptions(cfg *Config) (redisstore.Options, error) {
	r := cfg.Store.Redis
	opts := redisstore.Options{Addrs: r.Addrs, Username: r.Username, Password: string(r.Password),
		Prefix: r.Prefix, OnShortfall: redisstore.Shortfall(r.OnShortfall), WaitTimeout: time.Duration(r.WaitTimeout),
		CallbackLease: time.Duration(r.CallbackLease), MessageTTL: time.Duration(r.MessageTTL), NodeID: cfg.Fleet.NodeID}
	if r.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if r.TLSCAFile != "" {
			pool, err := loadCAs(r.TLSCAFile)
			if err != nil {
				return opts, fmt.Errorf("daemon: store.redis.tls_ca_file: %w", err)
			}
			opts.TLS.RootCAs = pool
		}
	}
	return opts, nil
}

// AdoptFleetConfig makes cfg's configuration the fleet's: the nodes then
// reload it (SIGHUP) one by one, and nodes that start with it are let in.
// It needs the fleet's secret file (the fingerprint is keyed with it) and
// returns the new fingerprint.
func AdoptFleetConfig(ctx context.Context, cfg *Config) (string, error) {
	if cfg.Store.Backend != backendRedis {
		return "", errors.New("daemon: fleet adopt: store.backend is not redis: there is no fleet")
	}
	b, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		return "", fmt.Errorf("daemon: fleet adopt: secret_file: %w", err)
	}
	secret, err := parseSecret(b)
	if err != nil {
		return "", fmt.Errorf("daemon: fleet adopt: secret_file %s: %w", cfg.SecretFile, err)
	}
	opts, err := redisOptions(cfg)
	if err != nil {
		return "", err
	}
	octx, cancel := context.WithTimeout(ctx, redisOpenTimeout)
	defer cancel()
	db, err := redisstore.Open(octx, opts)
	if err != nil {
		return "", fmt.Errorf("daemon: fleet adopt: %w", err)
	}
	defer db.Close()
	fp := configFingerprint(cfg, secret)
	if _, err := db.SetFleetConfig(octx, fp, false); err != nil {
		return "", fmt.Errorf("daemon: fleet adopt: %w", err)
	}
	return fp, nil
}

// redisTuning, when set, adjusts the redis backend's options (tests: a
// key prefix of their own, a short callback lease).
var redisTuning func(*redisstore.Options)
