package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"

	"github.com/otpgate/otpgate/otp"
)

var (
	_ otp.CallbackQueue = (*DB)(nil)
	_ otp.MOQueue       = (*DB)(nil)
)

// The callback queue.
//
// Every committed change of a message's delivery state queues a callback in
// the same transaction as the change (ApplyReceipt, and SaveSend when it
// applies a receipt that waited for its message), so a receipt that is
// acknowledged to the SMSC always has its callback on disk. Records are
// queued for the clients that Options.WantsCallback names (every client
// when it is nil); the dispatcher drops those of clients whose callback_url
// a reload removed.
//
// Key: "c/" + hex(client id) + "/" + due (unix nanoseconds, 8 bytes big
// endian) + id. Hex makes the client part free of '/', so one client's
// records are one contiguous range ordered by due time, and DueCallbacks
// skips from one client to the next with a seek: a client with a large
// backlog does not hide the callbacks of the others.
const prefixCallback = "c/"

// callbackTTL is how long past its first try a queued record may live in
// badger. The dispatcher drops records at otp.CallbackMaxAge; this only
// bounds what is left when no dispatcher runs.
const callbackTTL = otp.CallbackMaxAge + time.Hour

// callbackKey is the queue key of cb.
func callbackKey(cb otp.Callback) []byte {
	k := make([]byte, 0, len(prefixCallback)+2*len(cb.ClientID)+1+8+len(cb.ID))
	k = append(k, prefixCallback...)
	k = hex.AppendEncode(k, []byte(cb.ClientID))
	k = append(k, '/')
	k = binary.BigEndian.AppendUint64(k, uint64(max(cb.Due.UnixNano(), 0)))
	return append(k, cb.ID...)
}

// newCallbackID returns 16 random hex digits.
func newCallbackID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("callback id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// enqueueCallback queues, in txn, the callback for m when its delivery
// state is no longer prev (the state before this transaction changed it)
// and is not ACCEPTED: a receipt of one part of a multi-part message that
// leaves the message in flight tells the client nothing.
func (db *DB) enqueueCallback(txn *badger.Txn, prev otp.State, m otp.Message) error {
	state, _, _ := m.Summary()
	if state == prev || state == otp.StateAccepted || (db.wantsCB != nil && !db.wantsCB(m.ClientID)) {
		return nil
	}
	id, err := newCallbackID()
	if err != nil {
		return err
	}
	cb := otp.NewCallback(m, id, db.now())
	return putCallback(txn, cb)
}

// putCallback writes cb under its key, expiring callbackTTL after FirstAt.
func putCallback(txn *badger.Txn, cb otp.Callback) error {
	v, err := json.Marshal(cb)
	if err != nil {
		return err
	}
	e := badger.NewEntry(callbackKey(cb), v)
	e.ExpiresAt = unixCeil(cb.FirstAt.Add(callbackTTL))
	return txn.SetEntry(e)
}

// QueueCallback implements otp.MOQueue: it stores cb (an MO message's
// callback, which no delivery-state change queues) due at cb.Due, expiring
// callbackTTL after cb.FirstAt.
func (db *DB) QueueCallback(ctx context.Context, cb otp.Callback) error {
	if cb.ID == "" || cb.ClientID == "" {
		return errors.New("store: queue callback: empty id or client")
	}
	if err := db.update(ctx, func(txn *badger.Txn) error { return putCallback(txn, cb) }); err != nil {
		return fmt.Errorf("store: queue callback: %w", err)
	}
	return nil
}

// DueCallbacks implements otp.CallbackQueue: it returns, for each client,
// up to perClient callbacks due at or before now, earliest first. A record
// that cannot be decoded is logged and skipped (badger expires it).
func (db *DB) DueCallbacks(ctx context.Context, now time.Time, perClient int) ([]otp.Callback, error) {
	if perClient <= 0 {
		perClient = 1
	}
	limit := uint64(max(now.UnixNano(), 0))
	var out []otp.Callback
	err := db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixCallback)})
		defer it.Close()
		var client []byte // key prefix of the client being read
		n := 0
		it.Seek([]byte(prefixCallback))
		for it.Valid() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			k := item.Key()
			slash := bytes.IndexByte(k[len(prefixCallback):], '/')
			if slash < 0 || len(k) < len(prefixCallback)+slash+1+8 {
				it.Next() // not a key of ours
				continue
			}
			cp := k[:len(prefixCallback)+slash+1]
			if !bytes.Equal(cp, client) {
				client, n = append(client[:0], cp...), 0
			}
			if binary.BigEndian.Uint64(k[len(cp):]) > limit || n >= perClient {
				// The rest of this client's records are later: next client.
				it.Seek(append(bytes.Clone(client), 0xff))
				continue
			}
			var cb otp.Callback
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &cb) }); err != nil {
				db.log.Warn("callback record unreadable: skipped", keyKey, fmt.Sprintf("%q", k), keyError, err)
				it.Next()
				continue
			}
			out = append(out, cb)
			n++
			it.Next()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: due callbacks: %w", err)
	}
	return out, nil
}

// CallbackDone implements otp.CallbackQueue: it removes cbs (by ID and Due)
// in one transaction.
func (db *DB) CallbackDone(ctx context.Context, cbs ...otp.Callback) error {
	if len(cbs) == 0 {
		return nil
	}
	err := db.update(ctx, func(txn *badger.Txn) error {
		for _, cb := range cbs {
			if err := txn.Delete(callbackKey(cb)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: callback done: %w", err)
	}
	return nil
}

// RescheduleCallback implements otp.CallbackQueue: in one transaction it
// removes the record of cb.ID due at cb.Due and writes cb due at next. When
// that record is gone (delivered or dropped meanwhile) nothing is written.
func (db *DB) RescheduleCallback(ctx context.Context, cb otp.Callback, next time.Time) error {
	err := db.update(ctx, func(txn *badger.Txn) error {
		old := callbackKey(cb)
		if _, err := txn.Get(old); errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := txn.Delete(old); err != nil {
			return err
		}
		nc := cb
		nc.Due = next
		return putCallback(txn, nc)
	})
	if err != nil {
		return fmt.Errorf("store: reschedule callback: %w", err)
	}
	return nil
}

// WatchCallbacks calls notify (which must not block) after each commit
// that queues or reschedules a callback, until ctx is done or the DB is
// closed; then it returns nil. It is a hint for a dispatcher that would
// otherwise wait for its next poll: notifications may be coalesced, and
// callbacks queued before the call are not announced.
func (db *DB) WatchCallbacks(ctx context.Context, notify func()) error {
	db.mu.RLock()
	closed := db.closed
	db.mu.RUnlock()
	if closed {
		return nil
	}
	err := db.bdb.Subscribe(ctx, func(kvs *badger.KVList) error {
		for _, kv := range kvs.GetKv() {
			if len(kv.GetValue()) > 0 { // a write, not a delete
				notify()
				break
			}
		}
		return nil
	}, []pb.Match{{Prefix: []byte(prefixCallback)}})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("store: watch callbacks: %w", err)
	}
	return nil
}
