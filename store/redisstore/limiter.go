package redisstore

import (
	"context"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// bucketScript takes a token from a bucket shared by every node: tokens
// refill at rate per second up to burst, from the time of the last take.
// A node whose clock is behind the last taker's refills nothing until it
// catches up, so a skewed clock never adds tokens. The bucket expires once
// it would be full again: a missing bucket is a full one.
// KEYS[1] = rl:{key}; ARGV: now (µs), rate (tokens/s), burst.
var bucketScript = redis.NewScript(`
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(v[1]), tonumber(v[2])
if not tokens or not ts then
  tokens, ts = burst, now
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) / 1e6 * rate)
  ts = now
else
  tokens = math.min(burst, tokens)
end
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return ok
`)

// limiterTimeout bounds one Allow.
const limiterTimeout = 2 * time.Second

// Allow implements otp.Limiter with a token bucket per key shared by every
// node of the fleet (x/time/rate's semantics: a perSecond not above zero
// means no limit, a burst below one counts as one). When Redis cannot
// answer it allows the call and logs (at most every ten seconds): the
// request then meets the store itself, which answers 503 when it cannot
// write.
func (db *DB) Allow(key string, perSecond float64, burst int) bool {
	if !(perSecond > 0) {
		return true
	}
	if burst < 1 {
		burst = 1
	}
	if math.IsInf(perSecond, 1) {
		return true
	}
	if db.errClosed() != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
	defer cancel()
	ok, err := bucketScript.Run(ctx, db.rdb, []string{db.limiterKey(key)}, micros(db.now()), formatFloat(perSecond), burst).Int()
	if err != nil {
		if db.warnDue(&db.lastLimWarn) {
			db.log.Warn("rate bucket unavailable: calls allowed", keyError, err)
		}
		return true
	}
	return ok == 1
}
