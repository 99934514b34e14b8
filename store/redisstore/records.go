package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// get returns the value under key, "" when there is none.
func (db *DB) get(ctx context.Context, key string) (string, error) {
	if err := db.errClosed(); err != nil {
		return "", err
	}
	var v string
	err := db.routed(ctx, func() error {
		var err error
		v, err = db.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			v, err = "", nil
		}
		return err
	})
	return v, err
}

// decodeRecord decodes raw (the value under the record key of key) and
// reports whether it is a live record at now.
func decodeRecord(key, raw string, now time.Time) (otp.Record, bool, error) {
	if raw == "" {
		return otp.Record{Key: key}, false, nil
	}
	var rec otp.Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return otp.Record{}, false, fmt.Errorf("record %q: %w", store.MaskKey(key), err)
	}
	if !rec.KeepUntil.After(now) {
		return otp.Record{Key: key}, false, nil
	}
	rec.Key = key
	return rec, true, nil
}

// GetOTP returns the record stored under key, or otp.ErrNotFound when there
// is none or its KeepUntil has passed.
func (db *DB) GetOTP(ctx context.Context, key string) (otp.Record, error) {
	raw, err := db.get(ctx, db.recordKey(key))
	if err != nil {
		return otp.Record{}, fmt.Errorf("redisstore: get otp: %w", err)
	}
	rec, found, err := decodeRecord(key, raw, db.now())
	if err != nil {
		return otp.Record{}, fmt.Errorf("redisstore: get otp: %w", err)
	}
	if !found {
		return otp.Record{}, fmt.Errorf("redisstore: get otp: %w", otp.ErrNotFound)
	}
	return rec, nil
}

// UpdateOTP implements otp.Store. It reads the record, lets fn change it
// and writes the change with a compare-and-set against what it read; when
// another writer came first it reads again and calls fn again. Put writes
// *rec, expiring at its KeepUntil (a KeepUntil not in the future deletes
// it). fn's error is returned once its change is written and confirmed.
func (db *DB) UpdateOTP(ctx context.Context, key string, fn func(rec *otp.Record, found bool) (otp.Change, error)) error {
	if fn == nil {
		return errors.New("redisstore: update otp: nil fn")
	}
	var fnErr error
	err := db.updateRecord(ctx, key, func(rec *otp.Record, found bool) otp.Change {
		var change otp.Change
		change, fnErr = fn(rec, found) // runs again on a conflict: fnErr is the last run's
		return change
	})
	if err != nil {
		return fmt.Errorf("redisstore: update otp: %w", err)
	}
	return fnErr
}

// updateRecord is the compare-and-set loop of UpdateOTP and SaveSend.
func (db *DB) updateRecord(ctx context.Context, key string, fn func(rec *otp.Record, found bool) otp.Change) error {
	rk := db.recordKey(key)
	for try := 0; try < maxConflicts; try++ {
		if err := conflictPause(ctx, try); err != nil {
			return err
		}
		raw, err := db.get(ctx, rk)
		if err != nil {
			return err
		}
		now := db.now()
		rec, found, err := decodeRecord(key, raw, now)
		if err != nil {
			return err
		}
		change := fn(&rec, found)
		c := &cas{}
		c.guard(rk, raw)
		switch change {
		case otp.Put:
			if !rec.KeepUntil.After(now) {
				if raw == "" {
					return nil
				}
				c.del(rk)
				break
			}
			rec.Key = key
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			c.set(rk, string(v), pxat(rec.KeepUntil))
		case otp.Delete:
			if raw == "" {
				return nil
			}
			c.del(rk)
		default:
			return nil
		}
		err = c.run(ctx, db)
		if !errors.Is(err, errCASConflict) {
			return err
		}
	}
	return errConflict
}

// SaveSend implements otp.Store. It writes the record that fn updates
// (compare-and-set, fn may run more than once) and the message, then the
// message's id index entries, applying any receipt that came before the
// message (see receipts.go); each step is confirmed by a replica before
// the next. It returns msg as stored.
//
// The steps touch different slots, so they are not one transaction: a
// node that dies between them leaves the first ones written, which is what
// a failed SaveSend may leave with any store (the caller answers an error;
// the SMS is out and its code may or may not verify).
func (db *DB) SaveSend(ctx context.Context, key string, msg otp.Message, fn func(rec *otp.Record, found bool)) (otp.Message, error) {
	if msg.RequestID == "" {
		return otp.Message{}, errors.New("redisstore: save send: empty request id")
	}
	m := msg
	m.Parts = append([]otp.Part(nil), msg.Parts...)
	expires := db.now().Add(db.messageTTL)
	v, err := json.Marshal(m)
	if err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: save send: %w", err)
	}
	// The record and the message are in different slots and need no
	// order between them: written at once.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return db.updateRecord(gctx, key, func(rec *otp.Record, found bool) otp.Change {
			if fn != nil {
				fn(rec, found)
			}
			return otp.Put
		})
	})
	g.Go(func() error {
		mk := db.messageKey(m.RequestID)
		return (&cas{}).set(mk, string(v), pxat(expires)).run(gctx, db)
	})
	if err := g.Wait(); err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: save send: %w", err)
	}
	parts := make([]int, len(m.Parts))
	for i := range parts {
		parts[i] = i
	}
	stored, err := db.indexParts(ctx, m, parts, expires)
	if err != nil {
		return otp.Message{}, fmt.Errorf("redisstore: save send: %w", err)
	}
	return stored, nil
}
