package daemon

import (
	"log/slog"
	"net/http"
	"time"
)

// HTTP server limits: a slow or hostile client cannot hold a connection,
// a goroutine and a buffer for long (max_connections caps how many it may
// hold at once).
var (
	// readTimeout bounds reading a whole request, body included. A
	// variable so that tests need not wait 15 s.
	readTimeout = 15 * time.Second
)

const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
	// writeSlack is what the longest handler needs beyond submit_timeout:
	// the store's write deadline of the send path.
	writeSlack = 15 * time.Second
)

// newHTTPServer returns the API server with its timeouts: the write
// timeout lets the slowest send-otp (submit_timeout, then its store write)
// finish its answer.
func newHTTPServer(h http.Handler, cfg *Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadTimeout:       readTimeout,
		ReadHeaderTimeout: min(readHeaderTimeout, readTimeout),
		WriteTimeout:      time.Duration(cfg.SubmitTimeout) + writeSlack,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.With(keyComponent, "http").Handler(), slog.LevelWarn),
	}
}
