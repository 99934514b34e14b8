package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/guard"
)

var _ guard.Shared = (*DB)(nil)

// The pumping guard's shared state: the fleet's blocks, the clients'
// budget counts and the recently verified numbers. Redis expires all of
// it (no sweeper):
//
//	gb:{guard}                   HASH block key -> block (JSON)
//	gz:{guard}                   ZSET block key by its end (unix ms)
//	gr:{guard}                   HASH block key -> sends refused, fleet-wide
//	gv:{guard}                   version of the block set (INCR at each change)
//	gq:{<client>}:<scope>:h|d    HASH bucket index -> sends (a budget cap's
//	                             hour in 5-minute buckets, day in hours)
//	gn:{<shard>}                 ZSET number by when it verified a code (a
//	                             shard's share of guard.verified_numbers)
//	gw:{<range>}                 HASH s<bucket>|q<bucket> -> sends and
//	                             consecutive-looking sends of a hot range
//	gc:{<range>}, gk:{<range>}   HASH s<bucket>|v<bucket> -> sends and
//	                             verifications of a hot client (carrier) range
//
// The block keys share one slot, so that a raise, a release and a read of
// the set are atomic; the set is capped (the guard's max_blocks) and its
// keys expire when its last block ends. A client's budget keys share the
// client's slot, so that its caps are checked and counted at once.

// guardBlockKeys are the keys of the block set, as the scripts take them.
func (db *DB) guardBlockKeys() []string {
	const t = "{guard}"
	return []string{db.prefix + "gb:" + t, db.prefix + "gz:" + t, db.prefix + "gr:" + t, db.prefix + "gv:" + t}
}

func (db *DB) budgetKey(client, scope, window string) string {
	return db.prefix + "gq:{" + tag(client) + "}:" + scope + ":" + window
}

func (db *DB) verifiedKey(number string) string {
	return db.prefix + "gn:{" + shardTags[shardOf(number)] + "}"
}

func (db *DB) velocityKey(rangeKey string) string { return db.prefix + "gw:{" + tag(rangeKey) + "}" }

func (db *DB) conversionKey(rangeKey string, carrier bool) string {
	if carrier {
		return db.prefix + "gk:{" + tag(rangeKey) + "}"
	}
	return db.prefix + "gc:{" + tag(rangeKey) + "}"
}

// guardLua is shared by the block scripts: drop removes a block.
const guardLua = `
local function drop(k)
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
  redis.call('HDEL', KEYS[3], k)
end
`

// putBlockScript stores a block unless one is active under its key.
// ARGV: key, block JSON, end (unix ms), now (unix ms), capacity.
// Returns the active block's JSON and refused count.
var putBlockScript = redis.NewScript(guardLua + `
local key, now, cap = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do drop(k) end
local cur = redis.call('HGET', KEYS[1], key)
if cur then
  return {cur, redis.call('HGET', KEYS[3], key) or '0'}
end
while redis.call('ZCARD', KEYS[2]) >= cap do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not first then break end
  drop(first)
end
redis.call('HDEL', KEYS[3], key)
redis.call('HSET', KEYS[1], key, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], key)
redis.call('INCR', KEYS[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local at = tonumber(last[2]) + 1000
for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], at) end
return {ARGV[2], '0'}
`)

// syncBlocksScript adds refused counts and returns the set's version, and
// the set when the version is not the caller's.
// ARGV: seen version, then block key and count pairs.
// Returns {version} or {version, HGETALL gb, HGETALL gr}.
var syncBlocksScript = redis.NewScript(`
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
  end
end
if #ARGV > 1 then
  local at = redis.call('PEXPIRETIME', KEYS[1])
  if at > 0 then redis.call('PEXPIREAT', KEYS[3], at) end
end
local v = redis.call('GET', KEYS[4]) or '0'
if v == ARGV[1] then return {v} end
return {v, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[3])}
`)

// deleteBlocksScript removes blocks. ARGV: their keys. Returns the
// removed blocks' JSON and refused counts, in pairs.
var deleteBlocksScript = redis.NewScript(guardLua + `
local out = {}
for i = 1, #ARGV do
  local j = redis.call('HGET', KEYS[1], ARGV[i])
  if j then
    out[#out + 1] = j
    out[#out + 1] = redis.call('HGET', KEYS[3], ARGV[i]) or '0'
    drop(ARGV[i])
  end
end
if #out > 0 then redis.call('INCR', KEYS[4]) end
return out
`)

// takeBudgetScript checks a client's caps and counts a send in each.
// KEYS: per cap, its hour and day hashes. ARGV: hour bucket, day bucket,
// count anyway (1/0), hour steps, day steps, hour TTL (ms), day TTL (ms),
// then per cap per_hour and per_day (0: none).
// Returns {first spent cap (1-based, 0: none), its hour sends, its day sends}.
var takeBudgetScript = redis.NewScript(`
local hi, di, count = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local hs, ds = tonumber(ARGV[4]), tonumber(ARGV[5])
local function total(key, idx, steps)
  local f = {}
  for i = idx - steps + 1, idx do f[#f + 1] = tostring(i) end
  local s = 0
  for _, v in ipairs(redis.call('HMGET', key, unpack(f))) do
    if v then s = s + tonumber(v) end
  end
  return s
end
local function bump(key, idx, steps, ttl)
  redis.call('HINCRBY', key, tostring(idx), 1)
  if redis.call('HLEN', key) > steps then
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if tonumber(f) <= idx - steps then redis.call('HDEL', key, f) end
    end
  end
  redis.call('PEXPIRE', key, ttl)
end
local n = #KEYS / 2
local spent, sh, sd = 0, 0, 0
for k = 1, n do
  local ph, pd = tonumber(ARGV[6 + 2 * k]), tonumber(ARGV[7 + 2 * k])
  local h, d = total(KEYS[2 * k - 1], hi, hs), total(KEYS[2 * k], di, ds)
  if (ph > 0 and h >= ph) or (pd > 0 and d >= pd) then
    spent, sh, sd = k, h, d
    break
  end
end
if spent == 0 or count then
  for k = 1, n do
    bump(KEYS[2 * k - 1], hi, hs, ARGV[6])
    bump(KEYS[2 * k], di, ds, ARGV[7])
  end
end
return {spent, sh, sd}
`)

// undoBudgetScript takes a send back from a client's caps.
// KEYS: per cap, its hour and day hashes. ARGV: hour bucket, day bucket.
var undoBudgetScript = redis.NewScript(`
for k = 1, #KEYS, 2 do
  for j = 0, 1 do
    local key, idx = KEYS[k + j], ARGV[1 + j]
    if tonumber(redis.call('HGET', key, idx) or '0') > 0 then
      redis.call('HINCRBY', key, idx, -1)
    end
  end
end
return 0
`)

// velocityScript adds counts to a range's velocity buckets and returns
// its window's totals. ARGV: newest bucket, steps, TTL (ms), then bucket,
// sends and consecutive-looking sends triples. Returns {sends, seq}.
var velocityScript = redis.NewScript(`
local b, steps = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 4, #ARGV, 3 do
  for j, kind in ipairs({'s', 'q'}) do
    local n = tonumber(ARGV[i + j])
    if n ~= 0 then
      local f = kind .. ARGV[i]
      if redis.call('HINCRBY', KEYS[1], f, n) <= 0 then redis.call('HDEL', KEYS[1], f) end
    end
  end
end
local f = {}
for i = b - steps + 1, b do
  f[#f + 1] = 's' .. tostring(i)
  f[#f + 1] = 'q' .. tostring(i)
end
local v = redis.call('HMGET', KEYS[1], unpack(f))
local sends, seq = 0, 0
for i = 1, #v, 2 do
  if v[i] then sends = sends + tonumber(v[i]) end
  if v[i + 1] then seq = seq + tonumber(v[i + 1]) end
end
if redis.call('HLEN', KEYS[1]) > 2 * steps + 2 then
  for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do
    if tonumber(string.sub(k, 2)) <= b - steps then redis.call('HDEL', KEYS[1], k) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {sends, seq}
`)

// conversionScript adds counts to a range's conversion buckets and
// returns its figures. ARGV: newest bucket, steps, newest judged bucket,
// TTL (ms), then bucket, sends and verifications triples.
// Returns {sends in the window, judged sends, their verifications}.
var conversionScript = redis.NewScript(`
local b, steps, last = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 5, #ARGV, 3 do
  for j, kind in ipairs({'s', 'v'}) do
    local n = tonumber(ARGV[i + j])
    if n ~= 0 then redis.call('HINCRBY', KEYS[1], kind .. ARGV[i], n) end
  end
end
local f = {}
for i = b - steps + 1, b do
  f[#f + 1] = 's' .. tostring(i)
  f[#f + 1] = 'v' .. tostring(i)
end
local v = redis.call('HMGET', KEYS[1], unpack(f))
local sent, judged, verified = 0, 0, 0
for k = 1, #v, 2 do
  local s, y = tonumber(v[k] or '0'), tonumber(v[k + 1] or '0')
  sent = sent + s
  if b - steps + (k + 1) / 2 <= last then
    judged = judged + s
    verified = verified + math.min(s, y)
  end
end
if redis.call('HLEN', KEYS[1]) > 2 * steps + 2 then
  for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do
    if tonumber(string.sub(k, 2)) <= b - steps then redis.call('HDEL', KEYS[1], k) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {sent, judged, verified}
`)

// addVerifiedScript remembers a number's verification in a capped set.
// ARGV: number, when (unix ms), forget before (unix ms), cap, TTL (ms).
var addVerifiedScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 0
`)

// farFuture stands for a block without an end.
const farFuture = int64(1) << 52

// PutBlock implements guard.Shared.
func (db *DB) PutBlock(ctx context.Context, b guard.SharedBlock, now time.Time, capacity int) (guard.SharedBlock, error) {
	if err := db.errClosed(); err != nil {
		return guard.SharedBlock{}, err
	}
	b.Action, b.Refused = "", 0
	js, err := json.Marshal(b)
	if err != nil {
		return guard.SharedBlock{}, fmt.Errorf("redisstore: put block: %w", err)
	}
	until := farFuture
	if !b.Until.IsZero() {
		until = b.Until.UnixMilli()
	}
	v, err := putBlockScript.Run(ctx, db.rdb, db.guardBlockKeys(), b.Key, js, until, now.UnixMilli(), max(capacity, 1)).StringSlice()
	if err != nil {
		return guard.SharedBlock{}, fmt.Errorf("redisstore: put block: %w", err)
	}
	if len(v) != 2 {
		return guard.SharedBlock{}, fmt.Errorf("redisstore: put block: %d values", len(v))
	}
	return decodeBlock(v[0], v[1])
}

// SyncBlocks implements guard.Shared.
func (db *DB) SyncBlocks(ctx context.Context, seen string, refused map[string]int64, now time.Time) (string, []guard.SharedBlock, bool, error) {
	if err := db.errClosed(); err != nil {
		return "", nil, false, err
	}
	args := make([]any, 0, 1+2*len(refused))
	args = append(args, seen)
	for k, n := range refused {
		if n > 0 {
			args = append(args, k, n)
		}
	}
	res, err := syncBlocksScript.Run(ctx, db.rdb, db.guardBlockKeys(), args...).Slice()
	if err != nil {
		return "", nil, false, fmt.Errorf("redisstore: sync blocks: %w", err)
	}
	version, _ := res[0].(string)
	if len(res) < 3 {
		return version, nil, false, nil
	}
	all, _ := res[1].([]any)
	counts, _ := res[2].([]any)
	refusedOf := make(map[string]string, len(counts)/2)
	for i := 0; i+1 < len(counts); i += 2 {
		k, _ := counts[i].(string)
		refusedOf[k], _ = counts[i+1].(string)
	}
	var out []guard.SharedBlock
	for i := 0; i+1 < len(all); i += 2 {
		k, _ := all[i].(string)
		js, _ := all[i+1].(string)
		b, err := decodeBlock(js, refusedOf[k])
		if err != nil {
			db.log.Warn("guard block unreadable: skipped", keyError, err)
			continue
		}
		if !b.Until.IsZero() && !now.Before(b.Until) {
			continue // ended; the next raise drops it
		}
		out = append(out, b)
	}
	return version, out, true, nil
}

// DeleteBlocks implements guard.Shared.
func (db *DB) DeleteBlocks(ctx context.Context, keys []string) ([]guard.SharedBlock, error) {
	if err := db.errClosed(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	v, err := deleteBlocksScript.Run(ctx, db.rdb, db.guardBlockKeys(), args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: delete blocks: %w", err)
	}
	var out []guard.SharedBlock
	for i := 0; i+1 < len(v); i += 2 {
		b, err := decodeBlock(v[i], v[i+1])
		if err != nil {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func decodeBlock(js, refused string) (guard.SharedBlock, error) {
	var b guard.SharedBlock
	if err := json.Unmarshal([]byte(js), &b); err != nil {
		return b, fmt.Errorf("redisstore: guard block: %w", err)
	}
	if refused != "" {
		b.Refused, _ = strconv.ParseInt(refused, 10, 64)
	}
	return b, nil
}

// budgetArgs are the keys and leading arguments of the budget scripts.
func (db *DB) budgetKeys(t guard.BudgetTake) []string {
	keys := make([]string, 0, 2*len(t.Caps))
	for _, c := range t.Caps {
		keys = append(keys, db.budgetKey(t.Client, c.Scope, "h"), db.budgetKey(t.Client, c.Scope, "d"))
	}
	return keys
}

// TakeBudget implements guard.Shared.
func (db *DB) TakeBudget(ctx context.Context, t guard.BudgetTake) (guard.BudgetResult, error) {
	if err := db.errClosed(); err != nil {
		return guard.BudgetResult{}, err
	}
	if len(t.Caps) == 0 {
		return guard.BudgetResult{}, nil
	}
	count := 0
	if t.Count {
		count = 1
	}
	hourTTL := (guard.BudgetHourSteps + 1) * guard.BudgetHourStep
	dayTTL := (guard.BudgetDaySteps + 1) * guard.BudgetDayStep
	args := []any{t.Hour, t.Day, count, guard.BudgetHourSteps, guard.BudgetDaySteps, hourTTL.Milliseconds(), dayTTL.Milliseconds()}
	for _, c := range t.Caps {
		args = append(args, max(c.PerHour, 0), max(c.PerDay, 0))
	}
	v, err := takeBudgetScript.Run(ctx, db.rdb, db.budgetKeys(t), args...).Int64Slice()
	if err != nil {
		return guard.BudgetResult{}, fmt.Errorf("redisstore: take budget: %w", err)
	}
	if len(v) != 3 {
		return guard.BudgetResult{}, fmt.Errorf("redisstore: take budget: %d values", len(v))
	}
	return guard.BudgetResult{Spent: int(v[0]), Hour: int(v[1]), Day: int(v[2])}, nil
}

// UndoBudget implements guard.Shared.
func (db *DB) UndoBudget(ctx context.Context, t guard.BudgetTake) error {
	if err := db.errClosed(); err != nil {
		return err
	}
	if len(t.Caps) == 0 {
		return nil
	}
	if err := undoBudgetScript.Run(ctx, db.rdb, db.budgetKeys(t), t.Hour, t.Day).Err(); err != nil {
		return fmt.Errorf("redisstore: undo budget: %w", err)
	}
	return nil
}

// AddVerified implements guard.Shared: the numbers are spread over the
// shard tags' sorted sets, each capped at its share of capacity.
func (db *DB) AddVerified(ctx context.Context, number string, at time.Time, ttl time.Duration, capacity int) error {
	if err := db.errClosed(); err != nil {
		return err
	}
	if ttl < time.Millisecond {
		return nil
	}
	per := max(1, (capacity+numShards-1)/numShards)
	err := addVerifiedScript.Run(ctx, db.rdb, []string{db.verifiedKey(number)}, number, at.UnixMilli(),
		at.Add(-ttl).UnixMilli(), per, ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("redisstore: add verified: %w", err)
	}
	return nil
}

// VerifiedAt implements guard.Shared.
func (db *DB) VerifiedAt(ctx context.Context, number string) (time.Time, bool, error) {
	if err := db.errClosed(); err != nil {
		return time.Time{}, false, err
	}
	ms, err := db.rdb.ZScore(ctx, db.verifiedKey(number), number).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("redisstore: verified: %w", err)
	}
	return time.UnixMilli(int64(ms)), true, nil
}

// AddVelocity implements guard.Shared.
func (db *DB) AddVelocity(ctx context.Context, v guard.VelocityAdd) (sends, seq int, err error) {
	if err := db.errClosed(); err != nil {
		return 0, 0, err
	}
	args := make([]any, 0, 3+3*len(v.Counts))
	args = append(args, v.Bucket, v.Steps, max(v.TTL.Milliseconds(), 1))
	for _, c := range v.Counts {
		args = append(args, c.Bucket, c.Sends, c.Seq)
	}
	r, err := velocityScript.Run(ctx, db.rdb, []string{db.velocityKey(v.Key)}, args...).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("redisstore: add velocity: %w", err)
	}
	if len(r) != 2 {
		return 0, 0, fmt.Errorf("redisstore: add velocity: %d values", len(r))
	}
	return int(r[0]), int(r[1]), nil
}

// SyncConversion implements guard.Shared: one script call per range, in
// one pipeline (per master).
func (db *DB) SyncConversion(ctx context.Context, w guard.ConversionWindow, ranges []guard.ConversionAdd) ([]guard.ConversionFigures, error) {
	if err := db.errClosed(); err != nil {
		return nil, err
	}
	run := func() ([]*redis.Cmd, error) {
		pipe := db.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(ranges))
		for i, r := range ranges {
			args := make([]any, 0, 4+3*len(r.Counts))
			args = append(args, w.Bucket, w.Steps, w.LastJudged, max(w.TTL.Milliseconds(), 1))
			for _, c := range r.Counts {
				args = append(args, c.Bucket, c.Sent, c.Verified)
			}
			cmds[i] = conversionScript.EvalSha(ctx, pipe, []string{db.conversionKey(r.Key, r.Carrier)}, args...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A master that has not seen the script (a new one, a restart).
		if err := conversionScript.Load(ctx, db.rdb).Err(); err != nil {
			return nil, fmt.Errorf("redisstore: sync conversion: %w", err)
		}
		cmds, err = run()
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: sync conversion: %w", err)
	}
	out := make([]guard.ConversionFigures, len(cmds))
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("redisstore: sync conversion: %w", err)
		}
		if len(v) != 3 {
			return nil, fmt.Errorf("redisstore: sync conversion: %d values", len(v))
		}
		out[i] = guard.ConversionFigures{Sent: int(v[0]), Judged: int(v[1]), Verified: int(v[2])}
	}
	return out, nil
}

// DeleteCounts implements guard.Shared.
func (db *DB) DeleteCounts(ctx context.Context, clientRanges, carrierRanges []string) error {
	if err := db.errClosed(); err != nil {
		return err
	}
	// One DEL per key: they lie in different slots.
	pipe := db.rdb.Pipeline()
	for _, k := range clientRanges {
		pipe.Del(ctx, db.velocityKey(k))
		pipe.Del(ctx, db.conversionKey(k, false))
	}
	for _, k := range carrierRanges {
		pipe.Del(ctx, db.conversionKey(k, true))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: delete counts: %w", err)
	}
	return nil
}
