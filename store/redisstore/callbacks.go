package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/otp"
)

// The callback queue.
//
// Each shard keeps its callbacks in hashes (record, due time, lease owner
// by id) and, per client, a sorted set of ids scored by the time the
// callback may next be taken: its due time, or the end of the lease of the
// node that claimed it. A receipt's callback is queued in its message's
// shard, in the same write as the delivery-state change.
//
// Claims are leases. DueCallbacks reads every shard for callbacks that are
// due and unclaimed (or whose lease ran out), picks each client's earliest,
// and claims them: the claim names this process and ends after
// Options.CallbackLease, which Run (and each DueCallbacks) renews while the
// process lives. The claimed callbacks stay queued until CallbackDone or
// RescheduleCallback; a node that dies mid-delivery stops renewing, and
// once the lease ends another node claims and delivers them. A callback
// may so be delivered twice (the dead node may have posted it), never lost.
// Claims, reschedules and removals are not waited for on a replica: losing
// one in a failover only delivers a callback again.

// heldCallback is a callback this process has claimed.
type heldCallback struct {
	cb    otp.Callback
	shard int
}

// callbackState is this process's side of the queue.
type callbackState struct {
	mu       sync.Mutex
	held     map[string]heldCallback // by id
	lastScan time.Time               // wall clock
	dirty    bool                    // this process queued or rescheduled one since the last scan
}

// addCallback adds to c the writes that queue cb in shard.
func (db *DB) addCallback(c *cas, shard int, cb otp.Callback) error {
	v, err := json.Marshal(cb)
	if err != nil {
		return err
	}
	k := db.cbKeys(shard)
	c.hset(k.records, cb.ID, string(v)).hset(k.due, cb.ID, nsString(cb.Due)).
		zadd(k.queue+cb.ClientID, cb.ID, micros(cb.Due)).sadd(k.clients, cb.ClientID)
	return nil
}

// callbackQueued marks the queue changed by this process and tells the
// watchers.
func (db *DB) callbackQueued() {
	db.cbs.mu.Lock()
	db.cbs.dirty = true
	db.cbs.mu.Unlock()
	db.watchersMu.Lock()
	defer db.watchersMu.Unlock()
	for _, fn := range db.watchers {
		fn()
	}
}

// WatchCallbacks calls notify (which must not block) after each write of
// this process that queues or reschedules a callback, until ctx is done;
// then it returns nil. Callbacks that other nodes queue are found by the
// dispatcher's poll.
func (db *DB) WatchCallbacks(ctx context.Context, notify func()) error {
	db.watchersMu.Lock()
	id := db.nextWatcher
	db.nextWatcher++
	db.watchers[id] = notify
	db.watchersMu.Unlock()
	<-ctx.Done()
	db.watchersMu.Lock()
	delete(db.watchers, id)
	db.watchersMu.Unlock()
	return nil
}

// QueueCallback implements otp.MOQueue: it stores cb due at cb.Due, in the
// shard its id hashes to.
func (db *DB) QueueCallback(ctx context.Context, cb otp.Callback) error {
	if cb.ID == "" || cb.ClientID == "" {
		return errors.New("redisstore: queue callback: empty id or client")
	}
	c := &cas{}
	if err := db.addCallback(c, callbackShard(cb.ID), cb); err != nil {
		return fmt.Errorf("redisstore: queue callback: %w", err)
	}
	if err := c.run(ctx, db); err != nil {
		return fmt.Errorf("redisstore: queue callback: %w", err)
	}
	db.callbackQueued()
	return nil
}

// scanScript validates and renews this process's leases in one shard and
// lists, per client, up to a number of callbacks it may claim.
// KEYS: cbc, cbo, cbd. ARGV: token, now for leases (µs), new lease end
// (µs), due horizon (ns, 19 digits), highest score to read (µs), per
// client, queue key prefix, then the held (client, id) pairs of the shard.
// It returns the number of held ids no longer ours, those ids, then
// (client, id, due) triples.
var scanScript = redis.NewScript(`
local token, leaseNow, leaseUntil, nowNs = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local upper, per, qp = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local lost = {}
for i = 8, #ARGV - 1, 2 do
  local client, id = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[2], id) == token then
    redis.call('ZADD', qp .. client, 'XX', leaseUntil, id)
  else
    lost[#lost + 1] = id
  end
end
local out = {tostring(#lost)}
for _, id in ipairs(lost) do out[#out + 1] = id end
if per <= 0 then return out end
for _, client in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local q = qp .. client
  if redis.call('EXISTS', q) == 0 then
    redis.call('SREM', KEYS[1], client)
  else
    local n, off, stale = 0, 0, {}
    while n < per do
      local page = redis.call('ZRANGEBYSCORE', q, '-inf', upper, 'WITHSCORES', 'LIMIT', off, 100)
      if #page == 0 then break end
      off = off + #page / 2
      for j = 1, #page, 2 do
        local id, score = page[j], tonumber(page[j + 1])
        local due = redis.call('HGET', KEYS[3], id)
        if not due then
          stale[#stale + 1] = id
        elseif due <= nowNs then
          local owner = redis.call('HGET', KEYS[2], id)
          if not owner or (owner ~= token and score <= leaseNow) then
            out[#out + 1] = client
            out[#out + 1] = id
            out[#out + 1] = due
            n = n + 1
            if n >= per then break end
          end
        end
      end
    end
    for _, id in ipairs(stale) do redis.call('ZREM', q, id) end
  end
end
return out
`)

// claimScript claims callbacks that are still claimable and returns (id,
// record) pairs of those it claimed.
// KEYS: cbo, cbd, cbr. ARGV: token, now for leases (µs), lease end (µs),
// due horizon (ns), queue key prefix, then (client, id) pairs.
var claimScript = redis.NewScript(`
local out = {}
for i = 6, #ARGV - 1, 2 do
  local client, id = ARGV[i], ARGV[i + 1]
  local q = ARGV[5] .. client
  local score = redis.call('ZSCORE', q, id)
  local due = redis.call('HGET', KEYS[2], id)
  local rec = redis.call('HGET', KEYS[3], id)
  if score and due and rec and due <= ARGV[4] then
    local owner = redis.call('HGET', KEYS[1], id)
    if not owner or (owner ~= ARGV[1] and tonumber(score) <= tonumber(ARGV[2])) then
      redis.call('HSET', KEYS[1], id, ARGV[1])
      redis.call('ZADD', q, 'XX', ARGV[3], id)
      out[#out + 1] = id
      out[#out + 1] = rec
    end
  end
end
return out
`)

// doneScript removes callbacks. KEYS: cbo, cbd, cbr, cbc. ARGV: queue key
// prefix, then (client, id) pairs.
var doneScript = redis.NewScript(`
for i = 2, #ARGV - 1, 2 do
  local client, id = ARGV[i], ARGV[i + 1]
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  local q = ARGV[1] .. client
  redis.call('ZREM', q, id)
  if redis.call('ZCARD', q) == 0 then redis.call('SREM', KEYS[4], client) end
end
return 1
`)

// rescheduleScript replaces the record of a callback still due at the
// time given (and not claimed by another process). KEYS: cbo, cbd, cbr,
// cbc. ARGV: queue key prefix, client, id, expected due (ns), token, new
// record, new due (ns), new score (µs).
var rescheduleScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[3]) ~= ARGV[4] then return 0 end
local owner = redis.call('HGET', KEYS[1], ARGV[3])
if owner and owner ~= ARGV[5] then return 0 end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[7])
redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('ZADD', ARGV[1] .. ARGV[2], ARGV[8], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[2])
return 1
`)

// scriptCall is one run of a script in runScripts.
type scriptCall struct {
	keys []string
	args []any
}

// runScripts runs s once per call in one pipeline (the cluster client
// sends each to its slot's master) and returns the commands. A server that
// lacks the script gets it and the pipeline is run again.
func (db *DB) runScripts(ctx context.Context, s *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	if err := db.errClosed(); err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		cmds := make([]*redis.Cmd, len(calls))
		_, err := db.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = p.EvalSha(ctx, s.Hash(), c.keys, c.args...)
			}
			return nil
		})
		noScript := false
		for _, c := range cmds {
			if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				noScript = true
			}
		}
		if noScript && try == 0 {
			if err := db.loadScript(ctx, s); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return cmds, nil
	}
}

// loadScript loads s on every master.
func (db *DB) loadScript(ctx context.Context, s *redis.Script) error {
	if db.cluster != nil {
		return db.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return s.Load(ctx, c).Err()
		})
	}
	return s.Load(ctx, db.single).Err()
}

// candidate is a callback a scan found claimable.
type candidate struct {
	client, id, due string
	shard           int
}

// DueCallbacks implements otp.CallbackQueue: for each client, up to
// perClient callbacks due at now, earliest first, that this process holds
// or has just claimed. The callbacks it returns stay claimed by this
// process until CallbackDone or RescheduleCallback, and it returns them
// again meanwhile. The queue itself is read at most every Options.MinScan
// unless this process changed it since.
func (db *DB) DueCallbacks(ctx context.Context, now time.Time, perClient int) ([]otp.Callback, error) {
	if perClient <= 0 {
		perClient = 1
	}
	st := &db.cbs
	st.mu.Lock()
	scan := db.minScan < 0 || st.dirty || time.Since(st.lastScan) >= db.minScan
	if scan {
		st.dirty, st.lastScan = false, time.Now()
	}
	held := map[int][]heldCallback{}
	heldDue := map[string]int{}
	for _, h := range st.held {
		held[h.shard] = append(held[h.shard], h)
		if !h.cb.Due.After(now) {
			heldDue[h.cb.ClientID]++
		}
	}
	st.mu.Unlock()
	if scan {
		if err := db.scanAndClaim(ctx, now, perClient, held, heldDue); err != nil {
			st.mu.Lock()
			st.dirty = true // read again next time
			st.mu.Unlock()
			return nil, fmt.Errorf("redisstore: due callbacks: %w", err)
		}
	}
	st.mu.Lock()
	byClient := map[string][]otp.Callback{}
	for _, h := range st.held {
		if !h.cb.Due.After(now) {
			byClient[h.cb.ClientID] = append(byClient[h.cb.ClientID], h.cb)
		}
	}
	st.mu.Unlock()
	var out []otp.Callback
	for _, cbs := range byClient {
		slices.SortFunc(cbs, cmpCallback)
		out = append(out, cbs[:min(len(cbs), perClient)]...)
	}
	slices.SortFunc(out, func(a, b otp.Callback) int {
		return cmp.Or(cmp.Compare(a.ClientID, b.ClientID), cmpCallback(a, b))
	})
	return out, nil
}

// cmpCallback orders callbacks by due time, then id.
func cmpCallback(a, b otp.Callback) int {
	return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.ID, b.ID))
}

// scanAndClaim reads every shard (renewing the leases of held), picks for
// each client the earliest claimable callbacks up to perClient (counting
// heldDue, the client's held callbacks already due), and claims them.
func (db *DB) scanAndClaim(ctx context.Context, now time.Time, perClient int, held map[int][]heldCallback, heldDue map[string]int) error {
	leaseNow := db.now()
	calls := make([]scriptCall, numShards)
	for s := range numShards {
		k := db.cbKeys(s)
		args := []any{db.token, micros(leaseNow), micros(leaseNow.Add(db.lease)), nsString(now),
			max(microsCeil(now), micros(leaseNow)), perClient, k.queue}
		for _, h := range held[s] {
			args = append(args, h.cb.ClientID, h.cb.ID)
		}
		calls[s] = scriptCall{keys: []string{k.clients, k.owner, k.due}, args: args}
	}
	cmds, err := db.runScripts(ctx, scanScript, calls)
	if err != nil {
		return err
	}
	var lost []string
	byClient := map[string][]candidate{}
	for s, c := range cmds {
		res, err := c.StringSlice()
		if err != nil {
			return err
		}
		l, found := parseScan(res, s)
		lost = append(lost, l...)
		for _, f := range found {
			byClient[f.client] = append(byClient[f.client], f)
		}
	}
	picks := map[int][]candidate{}
	for client, cs := range byClient {
		slices.SortFunc(cs, func(a, b candidate) int { return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.id, b.id)) })
		for _, c := range cs[:min(len(cs), max(perClient-heldDue[client], 0))] {
			picks[c.shard] = append(picks[c.shard], c)
		}
	}
	var claimed []heldCallback
	if len(picks) > 0 {
		claimed, err = db.claim(ctx, now, leaseNow, picks)
	}
	st := &db.cbs
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, id := range lost {
		delete(st.held, id)
	}
	for _, h := range claimed {
		st.held[h.cb.ID] = h
	}
	return err
}

// parseScan splits a scan's reply into the held ids no longer ours and the
// candidates.
func parseScan(res []string, shard int) (lost []string, found []candidate) {
	if len(res) == 0 {
		return nil, nil
	}
	n := 0
	fmt.Sscan(res[0], &n)
	n = min(n, len(res)-1)
	lost = res[1 : 1+n]
	rest := res[1+n:]
	for i := 0; i+2 < len(rest); i += 3 {
		found = append(found, candidate{client: rest[i], id: rest[i+1], due: rest[i+2], shard: shard})
	}
	return lost, found
}

// claim claims picks (by shard) and returns those it got.
func (db *DB) claim(ctx context.Context, now, leaseNow time.Time, picks map[int][]candidate) ([]heldCallback, error) {
	var calls []scriptCall
	var shards []int
	for s, cs := range picks {
		k := db.cbKeys(s)
		args := []any{db.token, micros(leaseNow), micros(leaseNow.Add(db.lease)), nsString(now), k.queue}
		for _, c := range cs {
			args = append(args, c.client, c.id)
		}
		calls = append(calls, scriptCall{keys: []string{k.owner, k.due, k.records}, args: args})
		shards = append(shards, s)
	}
	cmds, err := db.runScripts(ctx, claimScript, calls)
	if err != nil {
		return nil, err
	}
	var out []heldCallback
	for i, c := range cmds {
		res, err := c.StringSlice()
		if err != nil {
			return out, err
		}
		for j := 0; j+1 < len(res); j += 2 {
			var cb otp.Callback
			if err := json.Unmarshal([]byte(res[j+1]), &cb); err != nil {
				db.log.Warn("callback record unreadable: skipped", keyID, res[j], keyError, err)
				continue
			}
			out = append(out, heldCallback{cb: cb, shard: shards[i]})
		}
	}
	return out, nil
}

// renewLeases renews the leases of the callbacks this process holds and
// forgets those it no longer holds.
func (db *DB) renewLeases(ctx context.Context) error {
	st := &db.cbs
	st.mu.Lock()
	held := map[int][]heldCallback{}
	for _, h := range st.held {
		held[h.shard] = append(held[h.shard], h)
	}
	st.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	leaseNow := db.now()
	var calls []scriptCall
	for s, hs := range held {
		k := db.cbKeys(s)
		args := []any{db.token, micros(leaseNow), micros(leaseNow.Add(db.lease)), nsString(leaseNow), 0, 0, k.queue}
		for _, h := range hs {
			args = append(args, h.cb.ClientID, h.cb.ID)
		}
		calls = append(calls, scriptCall{keys: []string{k.clients, k.owner, k.due}, args: args})
	}
	cmds, err := db.runScripts(ctx, scanScript, calls)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range cmds {
		res, err := c.StringSlice()
		if err != nil {
			return err
		}
		lost, _ := parseScan(res, 0)
		for _, id := range lost {
			delete(st.held, id)
		}
	}
	return nil
}

// CallbackDone implements otp.CallbackQueue: it removes cbs by id, claimed
// by whichever process (a delivered callback is not to be sent again).
func (db *DB) CallbackDone(ctx context.Context, cbs ...otp.Callback) error {
	if len(cbs) == 0 {
		return nil
	}
	byShard := map[int][]any{}
	for _, cb := range cbs {
		s := callbackShard(cb.ID)
		byShard[s] = append(byShard[s], cb.ClientID, cb.ID)
	}
	var calls []scriptCall
	for s, pairs := range byShard {
		k := db.cbKeys(s)
		calls = append(calls, scriptCall{keys: []string{k.owner, k.due, k.records, k.clients}, args: append([]any{k.queue}, pairs...)})
	}
	_, err := db.runScripts(ctx, doneScript, calls)
	db.forget(cbs)
	if err != nil {
		return fmt.Errorf("redisstore: callback done: %w", err)
	}
	return nil
}

// forget drops cbs from the callbacks this process holds.
func (db *DB) forget(cbs []otp.Callback) {
	db.cbs.mu.Lock()
	defer db.cbs.mu.Unlock()
	for _, cb := range cbs {
		delete(db.cbs.held, cb.ID)
	}
}

// RescheduleCallback implements otp.CallbackQueue: it stores cb due at
// next in place of the queued callback of cb's id while that is still due
// at cb.Due and not claimed by another process; otherwise it writes
// nothing. The callback is released: any node may claim it at next.
func (db *DB) RescheduleCallback(ctx context.Context, cb otp.Callback, next time.Time) error {
	nc := cb
	nc.Due = next
	v, err := json.Marshal(nc)
	if err != nil {
		return fmt.Errorf("redisstore: reschedule callback: %w", err)
	}
	s := callbackShard(cb.ID)
	k := db.cbKeys(s)
	_, err = db.runScripts(ctx, rescheduleScript, []scriptCall{{
		keys: []string{k.owner, k.due, k.records, k.clients},
		args: []any{k.queue, cb.ClientID, cb.ID, nsString(cb.Due), db.token, string(v), nsString(next), micros(next)},
	}})
	db.forget([]otp.Callback{cb})
	if err != nil {
		return fmt.Errorf("redisstore: reschedule callback: %w", err)
	}
	db.callbackQueued()
	return nil
}

// CallbackBacklog returns the number of callbacks in the fleet's queue,
// due, claimed or waiting for a retry: one HLEN per shard, pipelined, for
// a gauge read at each scrape (every node reports the same fleet-wide
// figure). It returns ErrClosed after Close.
func (db *DB) CallbackBacklog(ctx context.Context) (int, error) {
	if err := db.errClosed(); err != nil {
		return 0, fmt.Errorf("redisstore: callback backlog: %w", err)
	}
	cmds := make([]*redis.IntCmd, numShards)
	_, err := db.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.HLen(ctx, db.cbKeys(i).records)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redisstore: callback backlog: %w", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}
