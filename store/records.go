package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/otpgate/otpgate/otp"
)

// OTP records: one per client and number (otp.Record), under o/<key>.

// GetOTP returns the record stored under key, or otp.ErrNotFound when there
// is none or its KeepUntil has passed.
func (db *DB) GetOTP(ctx context.Context, key string) (otp.Record, error) {
	var rec otp.Record
	var found bool
	err := db.view(func(txn *badger.Txn) error {
		var err error
		rec, found, err = db.getRecord(txn, key)
		return err
	})
	if err != nil {
		return otp.Record{}, fmt.Errorf("store: get otp: %w", err)
	}
	if !found {
		return otp.Record{}, fmt.Errorf("store: get otp: %w", otp.ErrNotFound)
	}
	return rec, nil
}

// UpdateOTP implements otp.Store. fn gets the live record under key, or a
// new record with only Key set and found false. Put writes *rec under key;
// a record whose KeepUntil is zero or past is deleted instead. fn's error is
// returned as is once its change is committed.
func (db *DB) UpdateOTP(ctx context.Context, key string, fn func(rec *otp.Record, found bool) (otp.Change, error)) error {
	if fn == nil {
		return errors.New("store: update otp: nil fn")
	}
	var fnErr error
	err := db.update(ctx, func(txn *badger.Txn) error {
		rec, found, err := db.getRecord(txn, key)
		if err != nil {
			return err
		}
		if !found {
			rec = otp.Record{}
		}
		rec.Key = key
		var change otp.Change
		change, fnErr = fn(&rec, found) // runs again when the batch is rebuilt: fnErr is the last run's
		switch change {
		case otp.Put:
			rec.Key = key
			return db.putRecord(txn, rec)
		case otp.Delete:
			return txn.Delete([]byte(prefixOTP + key))
		default:
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("store: update otp: %w", err)
	}
	return fnErr
}

// getRecord reads the record under key; found is false when it is missing
// or its KeepUntil has passed.
func (db *DB) getRecord(txn *badger.Txn, key string) (rec otp.Record, found bool, err error) {
	item, err := txn.Get([]byte(prefixOTP + key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return otp.Record{}, false, nil
	}
	if err != nil {
		return otp.Record{}, false, err
	}
	if err := item.Value(func(v []byte) error { return unmarshalValue(v, &rec) }); err != nil {
		return otp.Record{}, false, fmt.Errorf("record %q: %w", maskKey(key), err)
	}
	if !rec.KeepUntil.After(db.now()) {
		return otp.Record{}, false, nil
	}
	rec.Key = key
	return rec, true, nil
}

// putRecord writes rec with badger expiry at rec.KeepUntil, or deletes it
// when KeepUntil is zero or past.
func (db *DB) putRecord(txn *badger.Txn, rec otp.Record) error {
	k := []byte(prefixOTP + rec.Key)
	if !rec.KeepUntil.After(db.now()) {
		return txn.Delete(k)
	}
	v, err := marshalValue(&rec)
	if err != nil {
		return err
	}
	e := badger.NewEntry(k, v)
	e.ExpiresAt = unixCeil(rec.KeepUntil)
	return txn.SetEntry(e)
}
