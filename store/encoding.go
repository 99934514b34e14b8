package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Values are binary (codec.go) or JSON; expiries are badger TTLs in whole
// seconds.

// getValue decodes the value under key into v and reports whether it exists.
func getValue(txn *badger.Txn, key string, v any) (bool, error) {
	_, ok, err := getValueExpiry(txn, key, v)
	return ok, err
}

// getValueExpiry is getValue that also returns the entry's expiry (unix
// seconds; 0 never).
func getValueExpiry(txn *badger.Txn, key string, v any) (expires uint64, ok bool, err error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if err := item.Value(func(b []byte) error { return unmarshalValue(b, v) }); err != nil {
		return 0, false, fmt.Errorf("decode %q: %w", maskKey(key), err)
	}
	return item.ExpiresAt(), true, nil
}

// setValue writes v under key, expiring at expires (unix seconds; 0 never).
func setValue(txn *badger.Txn, key string, v any, expires uint64) error {
	b, err := marshalValue(v)
	if err != nil {
		return err
	}
	e := badger.NewEntry([]byte(key), b)
	e.ExpiresAt = expires
	return txn.SetEntry(e)
}

// unixCeil is t in unix seconds, rounded up so that an entry never expires
// before t.
func unixCeil(t time.Time) uint64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	if s < 0 {
		return 0
	}
	return uint64(s)
}
