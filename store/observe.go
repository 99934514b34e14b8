package store

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// CallbackBacklog returns the number of callbacks in the queue, due or
// waiting for a retry: a scan of keys only (no value is read), for a gauge
// read at each scrape. It returns ctx's error when ctx ends first, and
// ErrClosed after Close.
func (db *DB) CallbackBacklog(ctx context.Context) (int, error) {
	n := 0
	err := db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixCallback)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: callback backlog: %w", err)
	}
	return n, nil
}
