package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// go-redis logs its own connection troubles (a dial refused while a
// master fails over) with the standard logger, one unstructured line per
// attempt on stderr. They are routed instead to the first opened DB's
// logger, as warnings at most once every clientLogEvery: the store's own
// errors and Health already say what the gateway makes of them.

const clientLogEvery = 10 * time.Second

var clientLogOnce sync.Once

type clientLog struct {
	log  *slog.Logger
	last atomic.Int64 // unix ns of the last line let through
}

func (l *clientLog) Printf(_ context.Context, format string, v ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(clientLogEvery) || !l.last.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("redis client", keyError, fmt.Sprintf(format, v...))
}

// routeClientLog sends go-redis's log to log (once per process).
func routeClientLog(log *slog.Logger) {
	clientLogOnce.Do(func() { redis.SetLogger(&clientLog{log: log}) })
}
