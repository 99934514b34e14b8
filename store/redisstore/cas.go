package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// casScript is the one write of records, messages, index entries and
// pending receipts: a compare-and-set over keys of one slot. The domain's
// rules stay in Go: a writer reads what it needs, computes the change and
// sends it here with the values it read as guards; the script applies the
// change only when every guard still holds (nothing has changed since the
// read), else it returns 0 and the writer reads again. A value equal to the
// one read is as good as unchanged (the change was computed from it).
//
// ARGV: the number of guards, then per guard the KEYS index and the
// expected value ("" for none); then the number of writes, then per write
// an op and its KEYS index and two arguments:
//
//	set   value pxat   SET with PXAT (unix ms), or KEEPTTL when pxat is ""
//	del   -     -      DEL
//	hset  field value  HSET
//	zadd  member score ZADD
//	sadd  member -     SADD
var casScript = redis.NewScript(`
local i = 1
local ng = tonumber(ARGV[i]); i = i + 1
for g = 1, ng do
  local v = redis.call('GET', KEYS[tonumber(ARGV[i])])
  if v == false then v = '' end
  if v ~= ARGV[i + 1] then return 0 end
  i = i + 2
end
local nw = tonumber(ARGV[i]); i = i + 1
for w = 1, nw do
  local op, k, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if op == 'set' then
    if b == '' then redis.call('SET', k, a, 'KEEPTTL') else redis.call('SET', k, a, 'PXAT', b) end
  elseif op == 'del' then redis.call('DEL', k)
  elseif op == 'hset' then redis.call('HSET', k, a, b)
  elseif op == 'zadd' then redis.call('ZADD', k, b, a)
  elseif op == 'sadd' then redis.call('SADD', k, a)
  else return redis.error_reply('cas: unknown op ' .. op) end
end
return 1
`)

// cas is one compare-and-set being built.
type cas struct {
	keys   []string
	index  map[string]int
	guards []string
	writes []string
	ng, nw int
}

func (c *cas) key(k string) string {
	if c.index == nil {
		c.index = map[string]int{}
	}
	i, ok := c.index[k]
	if !ok {
		c.keys = append(c.keys, k)
		i = len(c.keys)
		c.index[k] = i
	}
	return strconv.Itoa(i)
}

// guard requires key to hold want ("" for none).
func (c *cas) guard(key, want string) *cas {
	c.guards = append(c.guards, c.key(key), want)
	c.ng++
	return c
}

func (c *cas) op(op, key, a, b string) *cas {
	c.writes = append(c.writes, op, c.key(key), a, b)
	c.nw++
	return c
}

// set writes value under key, expiring at pxat (unix ms, see pxat); with
// pxat "" the key keeps its expiry.
func (c *cas) set(key, value, at string) *cas { return c.op("set", key, value, at) }
func (c *cas) del(key string) *cas            { return c.op("del", key, "", "") }
func (c *cas) hset(key, field, value string) *cas {
	return c.op("hset", key, field, value)
}
func (c *cas) zadd(key, member string, score int64) *cas {
	return c.op("zadd", key, member, strconv.FormatInt(score, 10))
}
func (c *cas) sadd(key, member string) *cas { return c.op("sadd", key, member, "") }

// errCASConflict means a guard no longer held: read again.
var errCASConflict = errors.New("compare-and-set conflict")

// run applies c, waiting for a replica (DB.write). It returns
// errCASConflict when a guard failed. A c without writes does nothing.
func (c *cas) run(ctx context.Context, db *DB) error {
	if c.nw == 0 {
		return nil
	}
	args := make([]any, 0, 2+len(c.guards)+len(c.writes))
	args = append(args, c.ng)
	for _, g := range c.guards {
		args = append(args, g)
	}
	args = append(args, c.nw)
	for _, w := range c.writes {
		args = append(args, w)
	}
	res, err := db.write(ctx, casScript, c.keys, args...)
	if err != nil {
		return err
	}
	if !wrote(res) {
		return errCASConflict
	}
	return nil
}
