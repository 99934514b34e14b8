package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/otpgate/otpgate/otp"
)

// Messages, the id index and pending receipts.
//
// A message lives in its shard's slot; each form of each of its carrier
// message ids (canonical and alternate, otp.IDForms) has a slot of its own
// holding the index entry (x: exact, y: alternate) and the receipt that
// came before the message (p:). No step spans two slots, and the order of
// the steps keeps every receipt:
//
//  1. SaveSend writes the message first, then each id form's index entry
//     with a compare-and-set guarded by that form's pending receipt (as it
//     read it), then applies the pending receipts it read to the message
//     (compare-and-set on the message, which also queues the callback),
//     then deletes them.
//  2. ApplyReceipt reads a form's index entries and pending receipt in one
//     command. An entry leads to the message, which it updates with a
//     compare-and-set. With no entry (or none whose message takes the
//     receipt) it stores the receipt as pending with a compare-and-set
//     guarded by the index entries and pending receipt it read.
//
// So in each form's slot either the receipt is stored as pending before
// SaveSend's index write (which then reads it), or the index write comes
// first (and the receipt's pending write, guarded by the
// missing entry, fails and reads again: it finds the entry). An entry is
// written only after its message, so a receipt that finds an entry finds
// the message. A node that dies between SaveSend's steps leaves a message
// whose pending receipt was not applied yet: the receipt stays pending (its
// TTL) but is not applied; the send itself failed (no 200).
//
// A receipt marked otp.Receipt.Exact is looked up, and applied from
// pending, under its exact form only: an alternate entry or an alternate
// form's pending slot is another message's.

// Test hooks, called between a read and the compare-and-set guarded by
// what it read, so that a test can make another writer come in between.
var (
	beforeIndexWrite func() // indexForm: the index entry is about to be written
	afterReceiptRead func() // ApplyReceipt: the index entries and pending receipt were read
)

// indexEntry locates a message part.
type indexEntry struct {
	RequestID string `json:"r"`
	Part      int    `json:"i"`
}

// pendingReceipt is a receipt kept until its message is saved.
type pendingReceipt struct {
	Carrier   string    `json:"c,omitempty"`
	MessageID string    `json:"m"`
	State     otp.State `json:"s"`
	Error     string    `json:"e,omitempty"`
	DoneAt    time.Time `json:"t,omitzero"`
	Exact     bool      `json:"x,omitempty"` // otp.Receipt.Exact: only its exact message takes it
}

// Message implements otp.ReceiptStore.
func (db *DB) Message(ctx context.Context, requestID string) (otp.Message, error) {
	raw, err := db.get(ctx, db.messageKey(requestID))
	if err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: message: %w", err)
	}
	if raw == "" {
		return otp.Message{}, fmt.Errorf("redisstore: message: %w", otp.ErrRequestNotFound)
	}
	var m otp.Message
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: message %q: %w", requestID, err)
	}
	return m, nil
}

// updateMessage changes the message of requestID with fn in a
// compare-and-set loop (fn may run more than once) and, in the same write,
// queues the callback for a delivery-state change. fn reports whether it
// took the change (matched; false leaves the message alone) and whether it
// changed anything. A missing message is otp.ErrRequestNotFound.
func (db *DB) updateMessage(ctx context.Context, requestID string, fn func(m *otp.Message) (matched, changed bool)) (msg otp.Message, matched, changed bool, err error) {
	mk := db.messageKey(requestID)
	shard := shardOf(requestID)
	for try := 0; try < maxConflicts; try++ {
		if err := conflictPause(ctx, try); err != nil {
			return otp.Message{}, false, false, err
		}
		raw, err := db.get(ctx, mk)
		if err != nil {
			return otp.Message{}, false, false, err
		}
		if raw == "" {
			return otp.Message{}, false, false, otp.ErrRequestNotFound
		}
		var m otp.Message
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return otp.Message{}, false, false, fmt.Errorf("message %q: %w", requestID, err)
		}
		prev, _, _ := m.Summary()
		matched, changed := fn(&m)
		if !matched || !changed {
			return m, matched, false, nil
		}
		v, err := json.Marshal(m)
		if err != nil {
			return otp.Message{}, false, false, err
		}
		c := (&cas{}).guard(mk, raw).set(mk, string(v), "")
		queued, err := db.queueStateCallback(c, shard, prev, m)
		if err != nil {
			return otp.Message{}, false, false, err
		}
		err = c.run(ctx, db)
		if errors.Is(err, errCASConflict) {
			continue
		}
		if err != nil {
			return otp.Message{}, false, false, err
		}
		if queued {
			db.callbackQueued()
		}
		return m, true, true, nil
	}
	return otp.Message{}, false, false, errConflict
}

// queueStateCallback adds to c the callback for m when its delivery state
// is no longer prev and is not ACCEPTED (a receipt of one part of a
// multi-part message that leaves it in flight tells the client nothing),
// for clients that want callbacks. It reports whether it added one.
func (db *DB) queueStateCallback(c *cas, shard int, prev otp.State, m otp.Message) (bool, error) {
	state, _, _ := m.Summary()
	if state == prev || state == otp.StateAccepted || (db.wantsCB != nil && !db.wantsCB(m.ClientID)) {
		return false, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, fmt.Errorf("callback id: %w", err)
	}
	id := hex.EncodeToString(b[:]) + "." + strconv.Itoa(shard)
	cb := otp.NewCallback(m, id, db.now())
	return true, db.addCallback(c, shard, cb)
}

// indexParts writes the index entries of the given parts of m (as stored,
// expiring at expires), applies to the message the receipts that waited
// for those ids, and deletes them. It returns the message as stored.
func (db *DB) indexParts(ctx context.Context, m otp.Message, parts []int, expires time.Time) (otp.Message, error) {
	type waiting struct {
		part      int
		alt       bool // found under an alternate form of the part's id
		form, raw string
		pr        pendingReceipt
	}
	// Every id form has a slot of its own: they are written at once.
	var (
		mu    sync.Mutex
		found []waiting
	)
	g, gctx := errgroup.WithContext(ctx)
	for _, i := range parts {
		forms, n := otp.IDFormList(m.Parts[i].MessageID)
		if n == 0 {
			continue
		}
		// A carrier that reuses an id (its counter wrapped) sends the next
		// receipt for the newest message: the entry is overwritten.
		ie, err := json.Marshal(indexEntry{RequestID: m.RequestID, Part: i})
		if err != nil {
			return otp.Message{}, err
		}
		for j, form := range forms[:n] {
			kind := byte('x')
			if j > 0 {
				kind = 'y'
			}
			g.Go(func() error {
				raw, err := db.indexForm(gctx, db.idKey(kind, m.Carrier, form), db.idKey('p', m.Carrier, form), string(ie), expires)
				if err != nil || raw == "" {
					return err
				}
				var pr pendingReceipt
				if err := json.Unmarshal([]byte(raw), &pr); err != nil {
					db.log.Warn("pending receipt unreadable: dropped", keyCarrier, m.Carrier, keyError, err)
				}
				mu.Lock()
				found = append(found, waiting{part: i, alt: j > 0, form: form, raw: raw, pr: pr})
				mu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return otp.Message{}, err
	}
	// A receipt known to carry an exact id, found under an alternate form,
	// is another message's: it stays for that message's SaveSend.
	found = slices.DeleteFunc(found, func(w waiting) bool { return w.alt && w.pr.Exact })
	if len(found) == 0 {
		return m, nil
	}
	stored, _, _, err := db.updateMessage(ctx, m.RequestID, func(cur *otp.Message) (bool, bool) {
		changed := false
		for _, w := range found {
			if cur.Carrier != m.Carrier || w.part >= len(cur.Parts) || w.pr.State == "" {
				continue
			}
			canonical, alts := otp.IDForms(cur.Parts[w.part].MessageID)
			if canonical != w.form && !slices.Contains(alts, w.form) {
				continue // the part was given another id meanwhile
			}
			r := otp.Receipt{Carrier: m.Carrier, MessageID: w.pr.MessageID, State: w.pr.State, Error: w.pr.Error, DoneAt: w.pr.DoneAt}
			if cur.Parts[w.part].Apply(r) {
				changed = true
			}
		}
		return true, changed
	})
	if err != nil {
		return otp.Message{}, err
	}
	for _, w := range found {
		pk := db.idKey('p', m.Carrier, w.form)
		if err := (&cas{}).guard(pk, w.raw).del(pk).run(ctx, db); err != nil && !errors.Is(err, errCASConflict) {
			// Applied; left to expire. A reused id could take it later.
			db.log.Warn("applied pending receipt not deleted", keyCarrier, m.Carrier, keyError, err)
			continue
		}
		db.untrackPending(ctx, m.Carrier, w.form)
	}
	return stored, nil
}

// indexScript writes an index entry and returns the pending receipt of
// the same id form ("" when none), in one step of the form's slot.
// KEYS: the x: or y: key, the p: key. ARGV: entry, PXAT (unix ms).
var indexScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
local p = redis.call('GET', KEYS[2])
if p then return p end
return ''
`)

// indexForm writes entry under ik (an x: or y: key) and returns the
// pending receipt under pk ("" when none), atomically: a receipt stored as
// pending before is returned, one that comes after finds the entry.
func (db *DB) indexForm(ctx context.Context, ik, pk, entry string, expires time.Time) (string, error) {
	if beforeIndexWrite != nil {
		beforeIndexWrite()
	}
	res, err := db.write(ctx, indexScript, []string{ik, pk}, entry, pxat(expires))
	if err != nil {
		return "", err
	}
	raw, _ := res.(string)
	return raw, nil
}

// ApplyReceipt implements otp.ReceiptStore. The receipt's id is looked up
// by its canonical form among the exact ids of r.Carrier's messages, then
// among their alternate forms (a part found there that already has another
// final state is not taken as the match); a receipt marked Exact only among
// the exact ids. A receipt that matches nothing is kept for
// PendingReceiptTTL so that SaveSend applies it; one with an empty id
// matches nothing and is not kept.
func (db *DB) ApplyReceipt(ctx context.Context, r otp.Receipt) (msg otp.Message, matched, changed bool, err error) {
	canonical := otp.CanonicalID(r.MessageID)
	if canonical == "" {
		return otp.Message{}, false, false, nil
	}
	if err := db.errClosed(); err != nil {
		return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: %w", err)
	}
	xk, yk, pk := db.idKey('x', r.Carrier, canonical), db.idKey('y', r.Carrier, canonical), db.idKey('p', r.Carrier, canonical)
	for try := 0; try < maxConflicts; try++ {
		if err := conflictPause(ctx, try); err != nil {
			return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: %w", err)
		}
		vals, err := db.mget(ctx, xk, yk, pk)
		if err != nil {
			return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: %w", err)
		}
		if afterReceiptRead != nil {
			afterReceiptRead()
		}
		forms := vals[:2]
		if r.Exact {
			forms = vals[:1] // its own message is being saved: no guess
		}
		for j, raw := range forms {
			if raw == "" {
				continue
			}
			var ie indexEntry
			if err := json.Unmarshal([]byte(raw), &ie); err != nil {
				return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: index entry: %w", err)
			}
			alt := j == 1
			msg, matched, changed, err = db.updateMessage(ctx, ie.RequestID, func(m *otp.Message) (bool, bool) {
				if ie.Part < 0 || ie.Part >= len(m.Parts) {
					return false, false
				}
				if m.Carrier != r.Carrier {
					// A receipt of an attempt that a retry through another
					// carrier replaced (its index entries stay): that
					// attempt is in Earlier with its final state, and the
					// current one is not this carrier's to change.
					return true, false
				}
				// A match through an alternate form is only a guess: the
				// receipt may belong to a message whose exact id it is and
				// whose SaveSend has not written its entry yet. Once the
				// guessed part has its final state, a receipt through the
				// alternate form is that other message's (whatever its
				// state: two DELIVRD receipts look alike): keep it pending.
				if p := m.Parts[ie.Part]; alt && p.State.Final() {
					return false, false
				}
				return true, m.Parts[ie.Part].Apply(r)
			})
			if errors.Is(err, otp.ErrRequestNotFound) {
				continue
			}
			if err != nil {
				return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: %w", err)
			}
			if matched {
				return msg, true, changed, nil
			}
		}
		kept, err := db.keepPending(ctx, r, vals, xk, yk, pk)
		if errors.Is(err, errCASConflict) {
			continue
		}
		if err != nil {
			return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: %w", err)
		}
		if kept && vals[2] == "" {
			db.trackPending(ctx, r.Carrier, canonical)
		}
		return otp.Message{}, false, false, nil
	}
	return otp.Message{}, false, false, fmt.Errorf("redisstore: apply receipt: %w", errConflict)
}

// keepPending stores r under pk unless a final state (or r's state) waits
// there already (then an Exact r only marks what waits Exact), guarded by
// the values of xk, yk and pk read as vals. It reports whether it wrote.
func (db *DB) keepPending(ctx context.Context, r otp.Receipt, vals []string, xk, yk, pk string) (bool, error) {
	pr := pendingReceipt{Carrier: r.Carrier, MessageID: r.MessageID, State: r.State, Error: r.Error, DoneAt: r.DoneAt, Exact: r.Exact}
	expires := pxat(db.now().Add(db.pendingTTL))
	if vals[2] != "" {
		var old pendingReceipt
		if err := json.Unmarshal([]byte(vals[2]), &old); err == nil && (old.State.Final() || old.State == r.State) {
			if !r.Exact || old.Exact {
				return false, nil
			}
			// The same id again, now known to be exact: from here on only
			// the message of that exact id takes what waits.
			old.Exact = true
			pr, expires = old, "" // its TTL kept
		}
	}
	v, err := json.Marshal(pr)
	if err != nil {
		return false, err
	}
	c := (&cas{}).guard(xk, vals[0]).guard(yk, vals[1]).guard(pk, vals[2])
	c.set(pk, string(v), expires)
	if err := c.run(ctx, db); err != nil {
		return false, err
	}
	return true, nil
}

// mget returns the values of keys (one slot), "" for those missing.
func (db *DB) mget(ctx context.Context, keys ...string) ([]string, error) {
	if err := db.errClosed(); err != nil {
		return nil, err
	}
	var res []any
	err := db.routed(ctx, func() error {
		var err error
		res, err = db.rdb.MGet(ctx, keys...).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, v := range res {
		if s, ok := v.(string); ok {
			out[i] = s
		}
	}
	return out, nil
}

// pendingTrimScript records a carrier's new pending receipt (its id form)
// in the carrier's queue, forgets those past the TTL and, past the cap,
// removes the oldest from the queue and returns them for deletion.
// KEYS[1] = pq:{carrier}; ARGV: form, now (ms), oldest kept (ms), cap, ttl (ms).
var pendingTrimScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local cap = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if cap <= 0 or n <= cap then return {} end
local popped = redis.call('ZPOPMIN', KEYS[1], n - cap)
local out = {}
for i = 1, #popped, 2 do out[#out + 1] = popped[i] end
return out
`)

// trackPending counts a new pending receipt of carrier against the cap and
// deletes the oldest beyond it. The queue is bookkeeping beside the
// receipts (another slot), so it is kept on a best-effort basis: a failure
// is logged, and the receipts expire at their TTL anyway.
func (db *DB) trackPending(ctx context.Context, carrier, form string) {
	now := db.now()
	res, err := pendingTrimScript.Run(ctx, db.rdb, []string{db.pendingQueueKey(carrier)}, form,
		now.UnixMilli(), now.Add(-db.pendingTTL).UnixMilli(), db.pendingMax, db.pendingTTL.Milliseconds()).StringSlice()
	if err != nil {
		db.log.Warn("pending receipt cap not kept", keyCarrier, carrier, keyError, err)
		return
	}
	for _, f := range res {
		n, err := db.rdb.Del(ctx, db.idKey('p', carrier, f)).Result()
		if err != nil {
			db.log.Warn("pending receipt over the cap not dropped", keyCarrier, carrier, keyError, err)
			continue
		}
		if n > 0 {
			db.onDropped(carrier)
		}
	}
}

// untrackPending removes an applied pending receipt from its carrier's
// queue (best effort, as trackPending).
func (db *DB) untrackPending(ctx context.Context, carrier, form string) {
	if err := db.rdb.ZRem(ctx, db.pendingQueueKey(carrier), form).Err(); err != nil {
		db.log.Debug("pending receipt queue not updated", keyCarrier, carrier, keyError, err)
	}
}

// MarkVerified implements otp.ReceiptStore: it sets Verified on the message
// of requestID, keeping its expiry, or returns otp.ErrRequestNotFound.
func (db *DB) MarkVerified(ctx context.Context, requestID string) error {
	_, _, _, err := db.updateMessage(ctx, requestID, func(m *otp.Message) (bool, bool) {
		if m.Verified {
			return true, false
		}
		m.Verified = true
		return true, true
	})
	if err != nil {
		return fmt.Errorf("redisstore: mark verified: %w", err)
	}
	return nil
}

// expiry returns when the key expires (now + MessageTTL when it has no
// expiry or is gone).
func (db *DB) expiry(ctx context.Context, key string) time.Time {
	ms, err := db.rdb.PExpireTime(ctx, key).Result()
	if err != nil || ms <= 0 {
		return db.now().Add(db.messageTTL)
	}
	return time.UnixMilli(int64(ms / time.Millisecond))
}

// RecordLateAck implements otp.ReceiptStore: it gives the part a.Part of
// the message of a.RequestID the carrier's message id, indexes it (so that
// its receipt matches) and applies a receipt that came before. A message
// that went out through another carrier, or whose part already has an id,
// is left unchanged. It returns the message as stored and whether its
// delivery state changed, or otp.ErrRequestNotFound while the message is
// not saved yet.
func (db *DB) RecordLateAck(ctx context.Context, a otp.Ack) (otp.Message, bool, error) {
	if a.Part < 0 || a.Part >= a.Parts || a.Parts > 255 || a.MessageID == "" {
		return otp.Message{}, false, fmt.Errorf("redisstore: late ack: bad part %d/%d", a.Part, a.Parts)
	}
	m, _, changed, err := db.updateMessage(ctx, a.RequestID, func(m *otp.Message) (bool, bool) {
		if m.Carrier == "" && len(m.Parts) == 0 {
			m.Carrier = a.Carrier
			m.Parts = make([]otp.Part, a.Parts)
			for i := range m.Parts {
				m.Parts[i].State = otp.StateAccepted
			}
		}
		if m.Carrier != a.Carrier || len(m.Parts) != a.Parts || m.Parts[a.Part].MessageID != "" {
			return true, false
		}
		m.Parts[a.Part].MessageID = a.MessageID
		return true, true
	})
	if err != nil {
		return otp.Message{}, false, fmt.Errorf("redisstore: late ack: %w", err)
	}
	if !changed {
		return m, false, nil
	}
	prev, _, _ := m.Summary()
	stored, err := db.indexParts(ctx, m, []int{a.Part}, db.expiry(ctx, db.messageKey(a.RequestID)))
	if err != nil {
		return otp.Message{}, false, fmt.Errorf("redisstore: late ack: %w", err)
	}
	now, _, _ := stored.Summary()
	return stored, now != prev, nil
}

// RecordRetry implements otp.ReceiptStore.
func (db *DB) RecordRetry(ctx context.Context, requestID string, a otp.Attempt) (otp.Message, error) {
	m, _, _, err := db.updateMessage(ctx, requestID, func(m *otp.Message) (bool, bool) {
		m.Earlier = append(m.Earlier, otp.Attempt{Carrier: m.Carrier, Parts: m.Parts, SubmittedAt: m.SubmittedAt})
		m.Carrier, m.SubmittedAt = a.Carrier, a.SubmittedAt
		m.Parts = append([]otp.Part(nil), a.Parts...)
		return true, true
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: record retry: %w", err)
	}
	parts := make([]int, len(m.Parts))
	for i := range parts {
		parts[i] = i
	}
	stored, err := db.indexParts(ctx, m, parts, db.expiry(ctx, db.messageKey(requestID)))
	if err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: record retry: %w", err)
	}
	return stored, nil
}
