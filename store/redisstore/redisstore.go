package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

var (
	_ otp.Store         = (*DB)(nil)
	_ otp.ReceiptStore  = (*DB)(nil)
	_ otp.CallbackQueue = (*DB)(nil)
	_ otp.MOQueue       = (*DB)(nil)
	_ otp.Limiter       = (*DB)(nil)
)

// Errors.
var (
	// ErrClosed is returned by every method of a DB after Close.
	ErrClosed = errors.New("redisstore: closed")
	// ErrShortfall means a write was made on the shard's master but no
	// replica confirmed it within Options.WaitTimeout (with
	// Options.OnShortfall ShortfallFail): the write may be lost if that
	// master dies now, so the caller must not report success.
	ErrShortfall = errors.New("redisstore: no replica confirmed the write in time")
)

// Shortfall says what a write does when no replica confirms it in time.
type Shortfall string

// The Shortfall policies.
const (
	// ShortfallFail returns ErrShortfall: the request fails (503) rather
	// than promise what a master's death would undo.
	ShortfallFail Shortfall = "fail"
	// ShortfallDegrade logs (at most every ten seconds) and carries on:
	// the write is on the master only.
	ShortfallDegrade Shortfall = "degrade"
)

// Defaults of Options.
const (
	// DefaultPrefix starts every key.
	DefaultPrefix = "otpgate:"
	// DefaultWaitTimeout bounds the wait for a replica after a write.
	DefaultWaitTimeout = time.Second
	// The TTLs and the pending cap are the badger store's, so that the
	// backends keep the same things for as long.
	DefaultMessageTTL           = store.DefaultMessageTTL
	DefaultPendingReceiptTTL    = store.DefaultPendingReceiptTTL
	DefaultMaxPendingPerCarrier = store.DefaultMaxPendingPerCarrier
	// DefaultCallbackLease is how long a node holds the callbacks it
	// claimed without renewing the claim; after it, another node takes
	// them.
	DefaultCallbackLease = 30 * time.Second
	// DefaultMinScan is the least time between two reads of the whole
	// callback queue by DueCallbacks, unless this node queued or
	// rescheduled one since.
	DefaultMinScan = 100 * time.Millisecond
)

// Options configures Open.
type Options struct {
	// Addrs are the cluster's seed nodes, or one standalone server.
	Addrs    []string
	Username string
	Password string
	// TLS, when set, is used for every connection.
	TLS *tls.Config
	// Prefix starts every key (default DefaultPrefix); it must not hold
	// '{' or '}'. Several gateways (or tests) can share a cluster under
	// different prefixes.
	Prefix string
	// OnShortfall: ShortfallFail (the default) or ShortfallDegrade.
	OnShortfall Shortfall
	// WaitTimeout bounds the wait for a replica after a write (default
	// DefaultWaitTimeout).
	WaitTimeout time.Duration
	// ShortfallSeen, when set, is called after each write that no replica
	// confirmed in time, whatever OnShortfall says: for a metric.
	ShortfallSeen func()

	// Logger gets warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock of record expiry, TTLs, callback times, leases and
	// rate buckets; nil means time.Now. Nodes of a fleet compare each
	// other's times through it (leases, buckets), so their clocks must
	// agree to well under a second.
	Now func() time.Time
	// MessageTTL is how long messages and their id index live (default
	// DefaultMessageTTL).
	MessageTTL time.Duration
	// PendingReceiptTTL is how long a receipt that matches no message is
	// kept (default DefaultPendingReceiptTTL).
	PendingReceiptTTL time.Duration
	// MaxPendingPerCarrier caps those receipts per carrier; beyond it the
	// oldest are dropped. 0 means DefaultMaxPendingPerCarrier; negative,
	// no cap.
	MaxPendingPerCarrier int
	// PendingDropped, when set, is called with the carrier of each pending
	// receipt dropped for the cap. It must not block.
	PendingDropped func(carrier string)
	// WantsCallback says whether a client has a callback URL, so that the
	// receipts of other clients queue no callback; nil queues them all.
	WantsCallback func(clientID string) bool
	// CallbackLease: see DefaultCallbackLease.
	CallbackLease time.Duration
	// MinScan: see DefaultMinScan; negative reads the queue at every
	// DueCallbacks.
	MinScan time.Duration
	// NodeID names this node in lease tokens (any string; the host name
	// by default).
	NodeID string
}

// DB is otpgate's state in Redis Cluster (or one standalone Redis). It is
// safe for concurrent use; every write the gateway answers on is confirmed
// by a replica before the method returns (see Options.OnShortfall).
type DB struct {
	rdb     redis.UniversalClient
	cluster *redis.ClusterClient // nil when standalone
	single  *redis.Client        // nil in a cluster

	prefix      string
	log         *slog.Logger
	now         func() time.Time
	onShortfall Shortfall
	waitTimeout time.Duration
	shortSeen   func()
	messageTTL  time.Duration
	pendingTTL  time.Duration
	pendingMax  int
	onDropped   func(string)
	wantsCB     func(string) bool
	lease       time.Duration
	minScan     time.Duration
	token       string // this process's lease owner token

	waitAOF     atomic.Int32          // 1: WAITAOF 1 1; 2: WAITAOF 0 1 (no local AOF); 0: WAIT 1
	lastPing    atomic.Pointer[error] // the last health check's error; nil when it passed
	closed      atomic.Bool
	lastWarn    atomic.Int64 // unix ns of the last shortfall warning
	lastLimWarn atomic.Int64 // unix ns of the last rate bucket warning
	cbs         callbackState
	watchersMu  sync.Mutex
	watchers    map[int]func()
	nextWatcher int
}

// Open connects to the servers of opts.Addrs and checks that they answer.
// With more than one address, or one that is a cluster node, it speaks
// Redis Cluster; otherwise the one standalone server.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redisstore: open: no address")
	}
	db := &DB{
		prefix: opts.Prefix, log: opts.Logger, now: opts.Now, onShortfall: opts.OnShortfall,
		waitTimeout: opts.WaitTimeout, shortSeen: opts.ShortfallSeen, messageTTL: opts.MessageTTL,
		pendingTTL: opts.PendingReceiptTTL, pendingMax: opts.MaxPendingPerCarrier, onDropped: opts.PendingDropped,
		wantsCB: opts.WantsCallback, lease: opts.CallbackLease, minScan: opts.MinScan,
	}
	if db.prefix == "" {
		db.prefix = DefaultPrefix
	}
	if strings.ContainsAny(db.prefix, "{}") {
		return nil, errors.New("redisstore: open: prefix must not hold { or }")
	}
	switch db.onShortfall {
	case "":
		db.onShortfall = ShortfallFail
	case ShortfallFail, ShortfallDegrade:
	default:
		return nil, fmt.Errorf("redisstore: open: on_shortfall %q is neither fail nor degrade", db.onShortfall)
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	routeClientLog(db.log)
	if db.now == nil {
		db.now = time.Now
	}
	if db.waitTimeout <= 0 {
		db.waitTimeout = DefaultWaitTimeout
	}
	if db.shortSeen == nil {
		db.shortSeen = func() {}
	}
	if db.messageTTL <= 0 {
		db.messageTTL = DefaultMessageTTL
	}
	if db.pendingTTL <= 0 {
		db.pendingTTL = DefaultPendingReceiptTTL
	}
	if db.pendingMax == 0 {
		db.pendingMax = DefaultMaxPendingPerCarrier
	}
	if db.onDropped == nil {
		db.onDropped = func(string) {}
	}
	if db.lease <= 0 {
		db.lease = DefaultCallbackLease
	}
	if db.minScan == 0 {
		db.minScan = DefaultMinScan
	}
	tok, err := newToken(opts.NodeID)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	db.token = tok
	db.cbs.held = map[string]heldCallback{}
	db.watchers = map[int]func(){}

	// A read or write waits for the replica up to waitTimeout on top of
	// its own time.
	readTimeout := max(3*time.Second, db.waitTimeout+2*time.Second)
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	isCluster := len(opts.Addrs) > 1
	if !isCluster {
		probe := redis.NewClient(&redis.Options{Addr: opts.Addrs[0], Username: opts.Username, Password: opts.Password,
			TLSConfig: opts.TLS, DisableIdentity: true, MaintNotificationsConfig: noMaint, MaxRetries: -1})
		info, err := probe.Info(ctx, "cluster").Result()
		probe.Close()
		if err != nil {
			return nil, fmt.Errorf("redisstore: open: %s: %w", opts.Addrs[0], err)
		}
		isCluster = strings.Contains(info, "cluster_enabled:1")
	}
	if isCluster {
		db.cluster = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: opts.Addrs, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLS,
			ReadTimeout: readTimeout, WriteTimeout: 3 * time.Second, DialTimeout: 3 * time.Second,
			ContextTimeoutEnabled: true, DisableIdentity: true, MaintNotificationsConfig: noMaint,
			MaxRedirects: 8, Protocol: 2,
		})
		db.rdb = db.cluster
	} else {
		db.single = redis.NewClient(&redis.Options{
			Addr: opts.Addrs[0], Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLS,
			ReadTimeout: readTimeout, WriteTimeout: 3 * time.Second, DialTimeout: 3 * time.Second,
			ContextTimeoutEnabled: true, DisableIdentity: true, MaintNotificationsConfig: noMaint, Protocol: 2,
		})
		db.rdb = db.single
	}
	if err := db.rdb.Ping(ctx).Err(); err != nil {
		db.rdb.Close()
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	if err := db.detectWait(ctx); err != nil {
		db.rdb.Close()
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	return db, nil
}

// detectWait chooses WAITAOF (Redis and Valkey 7.2 and later: the replica
// has fsynced the write) or WAIT (older: the replica has it in memory).
func (db *DB) detectWait(ctx context.Context) error {
	res, err := db.rdb.Do(ctx, "COMMAND", "INFO", "WAITAOF").Slice()
	if err != nil {
		return fmt.Errorf("command info: %w", err)
	}
	if len(res) > 0 && res[0] != nil {
		db.waitAOF.Store(1)
		return nil
	}
	db.log.Info("redis has no WAITAOF (before 7.2): a write is confirmed once a replica holds it in memory")
	return nil
}

// newToken returns a lease owner token: the node's name and 8 random bytes,
// so that a restarted process does not take its former leases for its own.
func newToken(node string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strings.ReplaceAll(node, " ", "_") + "-" + hex.EncodeToString(b[:]), nil
}

// Close closes the connections. It is idempotent.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	if err := db.rdb.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// Health returns nil when the DB is open and every master answered the
// last check (Run checks every second), else why not: for readiness.
func (db *DB) Health() error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.lastPing.Load(); err != nil {
		return fmt.Errorf("redisstore: %w", *err)
	}
	return nil
}

// Healthy reports whether Health is nil.
func (db *DB) Healthy() bool { return db.Health() == nil }

// Live reports whether the DB is open. Redis that does not answer is not
// cured by restarting the gateway, so it leaves Live true (and Health
// false).
func (db *DB) Live() bool { return !db.closed.Load() }

// healthEvery is how often Run pings the servers.
const healthEvery = time.Second

// Run checks the servers' health every second and renews the leases of the
// callbacks this node claimed, until ctx is done; then it returns nil.
func (db *DB) Run(ctx context.Context) error {
	health := time.NewTicker(healthEvery)
	defer health.Stop()
	renew := time.NewTicker(max(db.lease/3, 10*time.Millisecond))
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-health.C:
			if db.closed.Load() {
				return nil
			}
			if err := db.ping(ctx); err != nil && ctx.Err() == nil {
				db.lastPing.Store(&err)
			} else {
				db.lastPing.Store(nil)
			}
		case <-renew.C:
			if err := db.renewLeases(ctx); err != nil && ctx.Err() == nil {
				db.log.Warn("callback leases not renewed", keyError, err)
			}
		}
	}
}

// ping checks that every master answers.
func (db *DB) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if db.cluster != nil {
		return db.cluster.ForEachMaster(pctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	}
	return db.single.Ping(pctx).Err()
}

// errClosed is checked at the start of every method.
func (db *DB) errClosed() error {
	if db.closed.Load() {
		return ErrClosed
	}
	return nil
}

// masterFor returns a client of the master that holds key's slot.
func (db *DB) masterFor(ctx context.Context, key string) (*redis.Client, error) {
	if db.cluster != nil {
		return db.cluster.MasterForKey(ctx, key)
	}
	return db.single, nil
}

// maxRouteTries bounds the tries of a write that the cluster redirected or
// that found its master unreachable.
const maxRouteTries = 6

// write runs script on the master of keys[0] (every key must share its
// slot) and then, on the same connection, waits for a replica to confirm
// what the connection wrote. It returns the script's result. When the
// script reports it wrote nothing (0 or a nil reply, as the compare-and-set
// script does on a conflict), no confirmation is asked for. A write that
// was redirected (MOVED, ASK, CLUSTERDOWN, TRYAGAIN) or whose master could
// not be dialled was not made, and is tried again once the cluster's slot
// map is reloaded.
func (db *DB) write(ctx context.Context, s *redis.Script, keys []string, args ...any) (any, error) {
	if err := db.errClosed(); err != nil {
		return nil, err
	}
	var res any
	var wait *redis.Cmd
	loaded := false
	err := db.routed(ctx, func() error {
		node, err := db.masterFor(ctx, keys[0])
		if err != nil {
			return err
		}
		var eval *redis.Cmd
		_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			eval = p.EvalSha(ctx, s.Hash(), keys, args...)
			wait = p.Do(ctx, db.waitArgs()...)
			return nil
		})
		if err != nil && redis.HasErrorPrefix(eval.Err(), "NOSCRIPT") && !loaded {
			// A master that lacks the script (promoted, restarted) gets
			// it: the script did not run.
			loaded = true
			if lerr := s.Load(ctx, node).Err(); lerr != nil {
				return lerr
			}
			_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
				eval = p.EvalSha(ctx, s.Hash(), keys, args...)
				wait = p.Do(ctx, db.waitArgs()...)
				return nil
			})
		}
		if eerr := eval.Err(); eerr != nil && !errors.Is(eerr, redis.Nil) {
			return eerr
		}
		res, _ = eval.Result()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !wrote(res) {
		return res, nil
	}
	return res, db.confirmed(wait)
}

// routed runs op, and runs it again (up to maxRouteTries in all, with a
// growing pause) while it fails in a way that means the command was not
// run (see retryable): each time the cluster's slot map is reloaded first,
// so that a failover's new master is found.
func (db *DB) routed(ctx context.Context, op func() error) error {
	var err error
	for try := 0; try < maxRouteTries; try++ {
		if try > 0 {
			if db.cluster != nil {
				db.cluster.ReloadState(ctx)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (after %v)", ctx.Err(), err)
			case <-time.After(time.Duration(25<<try) * time.Millisecond):
			}
		}
		if err = op(); err == nil || !retryable(err) {
			return err
		}
	}
	return err
}

// wrote reports whether a script's result says it wrote something.
func wrote(res any) bool {
	switch v := res.(type) {
	case nil:
		return false
	case int64:
		return v != 0
	}
	return true
}

// retryable reports whether err means the command was not run: a
// redirection, a cluster without the slot's master for now, or a master
// that could not be dialled.
func retryable(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	if redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsLoadingError(err) ||
		redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// waitArgs is the command that waits for a replica to confirm the
// connection's writes.
func (db *DB) waitArgs() []any {
	ms := max(db.waitTimeout.Milliseconds(), 1)
	switch db.waitAOF.Load() {
	case 1:
		return []any{"WAITAOF", 1, 1, ms}
	case 2:
		return []any{"WAITAOF", 0, 1, ms}
	}
	return []any{"WAIT", 1, ms}
}

// confirmed checks the reply of the wait: nil when a replica confirmed,
// else what OnShortfall says.
func (db *DB) confirmed(wait *redis.Cmd) error {
	res, err := wait.Result()
	if err != nil {
		if strings.Contains(err.Error(), "appendonly") && db.waitAOF.CompareAndSwap(1, 2) {
			// WAITAOF with numlocal 1 needs the master's own AOF; without
			// it only the replica's fsync is waited for.
			db.log.Warn("redis master has appendonly off: only the replica's fsync is waited for")
		}
		return db.shortfall(fmt.Errorf("wait for replica: %w", err))
	}
	var replicas int64
	switch v := res.(type) {
	case int64: // WAIT
		replicas = v
	case []any: // WAITAOF: [local, replicas]
		if len(v) == 2 {
			replicas, _ = v[1].(int64)
		}
	}
	if replicas >= 1 {
		return nil
	}
	return db.shortfall(ErrShortfall)
}

// shortfall applies OnShortfall to a write no replica confirmed.
func (db *DB) shortfall(err error) error {
	db.shortSeen()
	if db.onShortfall == ShortfallFail {
		if db.warnDue(&db.lastWarn) {
			db.log.Warn("write not confirmed by a replica: refused (on_shortfall fail)", keyError, err)
		}
		return err
	}
	if db.warnDue(&db.lastWarn) {
		db.log.Warn("write not confirmed by a replica: kept on the master only (on_shortfall degrade)", keyError, err)
	}
	return nil
}

// warnDue reports whether a warning repeated on every request is due
// (at most every ten seconds, last holding the time of the last one).
func (db *DB) warnDue(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	l := last.Load()
	return now-l > int64(10*time.Second) && last.CompareAndSwap(l, now)
}

// conflictPause waits a little before the try-th retry of a
// compare-and-set that lost a race, so that many writers of one key do not
// keep colliding.
func conflictPause(ctx context.Context, try int) error {
	if try < 2 {
		return ctx.Err()
	}
	d := time.Duration(mrand.Int64N(int64(min(try, 20))*int64(time.Millisecond)) + 1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// maxConflicts bounds the retries of a compare-and-set.
const maxConflicts = 500

// errConflict is returned when a compare-and-set lost maxConflicts races.
var errConflict = errors.New("too many conflicting writes")

// pxat is t as a PXAT argument: unix milliseconds, rounded up so that a
// key never expires before t.
func pxat(t time.Time) string {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return strconv.FormatInt(max(ms, 1), 10)
}

// nsString is t in unix nanoseconds, 19 digits, so that times compare as
// strings in scripts (where numbers are doubles).
func nsString(t time.Time) string {
	ns := max(t.UnixNano(), 0)
	return fmt.Sprintf("%019d", ns)
}

// micros is t in unix microseconds, exact in a double until the year 2255.
func micros(t time.Time) int64 { return max(t.UnixMicro(), 0) }

// microsCeil is t in unix microseconds, rounded up.
func microsCeil(t time.Time) int64 {
	us := micros(t)
	if t.Sub(time.UnixMicro(us)) > 0 {
		us++
	}
	return us
}

// formatFloat writes f for a script.
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "0"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
