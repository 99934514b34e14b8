package smpp

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Log attribute keys, in one place.
const (
	keyComponent = "component"
	keyCarrier   = "carrier"
	keyBind      = "bind"
	keySlot      = "slot"
	keyError     = "error"
	keyCommandID = "command_id"
	keySeq       = "seq"
	keyLength    = "length"
	keyMessageID = "message_id"
	keyTimeout   = "timeout"
	keyRequestID = "request_id"
	keyTo        = "to"
	keyText      = "text"
	keyParts     = "parts"
	keyRetries   = "failures"
	keyBackoff   = "backoff"
	keyAddress   = "address"
	keyRoute     = "route"
	keyStat      = "stat"
	keyValidity  = "validity_period"
	keyStatus    = "status"
	keyReason    = "reason"
	keySystemID  = "system_id"
	keyRetryIn   = "retry_in"
	keyUptime    = "uptime"
	keyIdle      = "idle"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// everyLimiter lets a repeated log line through once per interval per key
// and counts what it held back, so a failing carrier cannot flood the
// journal. Safe for concurrent use.
type everyLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	held  map[string]int
}

func newEveryLimiter(every time.Duration) *everyLimiter {
	return &everyLimiter{every: every, last: map[string]time.Time{}, held: map[string]int{}}
}

// allow reports whether the line keyed by key may be logged now, and how
// many were held back since the last one.
func (l *everyLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.held[key]++
		return false, 0
	}
	n := l.held[key]
	delete(l.held, key)
	l.last[key] = now
	return true, n
}

// repeatEvery is how often a repeated warning is logged.
const repeatEvery = 10 * time.Second

// warnLimited logs at level lv through lim, adding the count of lines held
// back since the last one.
func warnLimited(log *slog.Logger, lim *everyLimiter, lv slog.Level, key, msg string, args ...any) {
	ok, held := lim.allow(key+"\x00"+msg, time.Now())
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	log.Log(context.Background(), lv, msg, args...)
}
