package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fleet keys:
//
//	bl:{<carrier>}:<slot>   bind lease: holder value, expires after the lease
//	fn:{fleet}              HASH node id -> "<secret fp>|<config fp>|<unix ms>"
//	fc:{fleet}              the fleet's config fingerprint
//
// A carrier's leases share a slot, so that one MGET reads them all. Leases
// are not waited for on a replica (WAIT): a failover that loses one lets
// another node bind the slot at worst one lease early, which a carrier
// that caps binds answers by refusing that bind until the old one goes.

func (db *DB) bindLeaseKey(carrier, slot string) string {
	return db.prefix + "bl:{" + tag(carrier) + "}:" + slot
}

func (db *DB) fleetNodesKey() string  { return db.prefix + "fn:{fleet}" }
func (db *DB) fleetConfigKey() string { return db.prefix + "fc:{fleet}" }

// leaseScript takes or renews a lease: when the key is absent or already
// holds ARGV[1], it is set to ARGV[1] for ARGV[2] milliseconds. It returns
// the holder after the call.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return cur
`)

// releaseScript deletes the lease when ARGV[1] still holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// TakeBindLease takes, or renews, the lease of a carrier's bind slot for
// holder (a string naming this node, unique in the fleet) for ttl. It
// reports whether holder holds it now, and who does.
func (db *DB) TakeBindLease(ctx context.Context, carrier, slot, holder string, ttl time.Duration) (held bool, current string, err error) {
	if db.closed.Load() {
		return false, "", ErrClosed
	}
	cur, err := leaseScript.Run(ctx, db.rdb, []string{db.bindLeaseKey(carrier, slot)}, holder, ttl.Milliseconds()).Text()
	if err != nil {
		return false, "", fmt.Errorf("redisstore: bind lease %s/%s: %w", carrier, slot, err)
	}
	return cur == holder, cur, nil
}

// ReleaseBindLease gives the lease back when holder still holds it.
func (db *DB) ReleaseBindLease(ctx context.Context, carrier, slot, holder string) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := releaseScript.Run(ctx, db.rdb, []string{db.bindLeaseKey(carrier, slot)}, holder).Err(); err != nil {
		return fmt.Errorf("redisstore: release bind lease %s/%s: %w", carrier, slot, err)
	}
	return nil
}

// BindLeaseHolders returns the holder of each of a carrier's slots, "" for
// a slot nobody holds.
func (db *DB) BindLeaseHolders(ctx context.Context, carrier string, slots []string) ([]string, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	keys := make([]string, len(slots))
	for i, s := range slots {
		keys[i] = db.bindLeaseKey(carrier, s)
	}
	vals, err := db.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: bind leases of %s: %w", carrier, err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i], _ = v.(string)
	}
	return out, nil
}

// FleetNode is what a node of the fleet last said of itself.
type FleetNode struct {
	ID        string
	SecretFP  string // fingerprint of the HMAC secret
	ConfigFP  string // fingerprint of the fleet-wide configuration
	Heartbeat time.Time
}

// Heartbeat records node n (its fingerprints, and now as its heartbeat)
// in the fleet's node table.
func (db *DB) Heartbeat(ctx context.Context, n FleetNode) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if strings.Contains(n.SecretFP+n.ConfigFP, "|") {
		return errors.New("redisstore: heartbeat: fingerprint holds |")
	}
	v := n.SecretFP + "|" + n.ConfigFP + "|" + strconv.FormatInt(n.Heartbeat.UnixMilli(), 10)
	if err := db.rdb.HSet(ctx, db.fleetNodesKey(), n.ID, v).Err(); err != nil {
		return fmt.Errorf("redisstore: heartbeat: %w", err)
	}
	return nil
}

// LeaveFleet removes node id from the node table (a clean shutdown).
func (db *DB) LeaveFleet(ctx context.Context, id string) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.rdb.HDel(ctx, db.fleetNodesKey(), id).Err(); err != nil {
		return fmt.Errorf("redisstore: leave fleet: %w", err)
	}
	return nil
}

// FleetNodes returns the node table; entries whose heartbeat is older
// than stale are removed from it and left out.
func (db *DB) FleetNodes(ctx context.Context, now time.Time, stale time.Duration) ([]FleetNode, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	all, err := db.rdb.HGetAll(ctx, db.fleetNodesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: fleet nodes: %w", err)
	}
	var out []FleetNode
	for id, v := range all {
		parts := strings.Split(v, "|")
		var ms int64
		if len(parts) == 3 {
			ms, _ = strconv.ParseInt(parts[2], 10, 64)
		}
		at := time.UnixMilli(ms)
		if len(parts) != 3 || now.Sub(at) > stale {
			// Best effort: a node that died leaves its entry behind.
			db.rdb.HDel(ctx, db.fleetNodesKey(), id)
			continue
		}
		out = append(out, FleetNode{ID: id, SecretFP: parts[0], ConfigFP: parts[1], Heartbeat: at})
	}
	return out, nil
}

// FleetConfig returns the fleet's config fingerprint, "" when none is set.
func (db *DB) FleetConfig(ctx context.Context) (string, error) {
	if db.closed.Load() {
		return "", ErrClosed
	}
	fp, err := db.rdb.Get(ctx, db.fleetConfigKey()).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: fleet config: %w", err)
	}
	return fp, nil
}

// SetFleetConfig makes fp the fleet's config fingerprint; with onlyIfUnset
// it does so only when none is set, and reports whether it did.
func (db *DB) SetFleetConfig(ctx context.Context, fp string, onlyIfUnset bool) (bool, error) {
	if db.closed.Load() {
		return false, ErrClosed
	}
	var (
		ok  bool
		err error
	)
	if onlyIfUnset {
		ok, err = db.rdb.SetNX(ctx, db.fleetConfigKey(), fp, 0).Result()
	} else {
		err = db.rdb.Set(ctx, db.fleetConfigKey(), fp, 0).Err()
		ok = err == nil
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: set fleet config: %w", err)
	}
	return ok, nil
}

// ServerTime is the Redis server's clock (TIME), for a node to measure
// its own clock's skew against the fleet's shared reference.
func (db *DB) ServerTime(ctx context.Context) (time.Time, error) {
	if db.closed.Load() {
		return time.Time{}, ErrClosed
	}
	var (
		t   time.Time
		err error
	)
	if db.cluster != nil {
		t, err = db.cluster.Time(ctx).Result()
	} else {
		t, err = db.single.Time(ctx).Result()
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("redisstore: time: %w", err)
	}
	return t, nil
}
