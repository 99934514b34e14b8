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
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := item.Value(func(b []byte) error { return unmarshalValue(b, v) }); err != nil {
		return false, fmt.Errorf("decode %q: %w", maskKey(key), err)
	}
	return true, nil
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
