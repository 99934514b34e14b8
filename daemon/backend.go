package daemon

import (
	"context"
	"crypto/tls"
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
	r := cfg.Store.Redis
	opts := redisstore.Options{Addrs: r.Addrs, Username: r.Username, Password: string(r.Password),
		Prefix: r.Prefix, OnShortfall: redisstore.Shortfall(r.OnShortfall), WaitTimeout: time.Duration(r.WaitTimeout),
		Logger: d.log.With(keyComponent, "store"), WantsCallback: d.wantsCallback, PendingDropped: d.pendingDropped}
	if r.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if r.TLSCAFile != "" {
			pool, err := loadCAs(r.TLSCAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("daemon: store.redis.tls_ca_file: %w", err)
			}
			opts.TLS.RootCAs = pool
		}
	}
	if m := d.Metrics; m != nil {
		opts.ShortfallSeen = m.StoreShortfall
	}
	if host, err := os.Hostname(); err == nil {
		opts.NodeID = host
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

// redisTuning, when set, adjusts the redis backend's options (tests: a
// key prefix of their own, a short callback lease).
var redisTuning func(*redisstore.Options)
