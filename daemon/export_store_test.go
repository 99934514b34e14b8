package daemon

import (
	"net/http"
	"time"

	"github.com/otpgate/otpgate/store"
)

// SetStoreTuning makes fn adjust the store options of the gateways started
// after it, and returns a func that restores the default.
func SetStoreTuning(fn func(*store.Options)) (restore func()) {
	old := storeTuning
	storeTuning = fn
	return func() { storeTuning = old }
}

// SetShutdownBounds sets the drain timeout (production: DrainTimeout) and
// what shutdown allows a handler beyond submit_timeout (production: 15 s),
// and returns a func that restores them.
func SetShutdownBounds(drain, slack time.Duration) (restore func()) {
	oldDrain, oldSlack := drainTimeout, inflightSlack
	drainTimeout, inflightSlack = drain, slack
	return func() { drainTimeout, inflightSlack = oldDrain, oldSlack }
}

// WrapHandler makes wrap wrap the API handler of the gateways started
// after it, and returns a func that restores the default.
func WrapHandler(wrap func(http.Handler) http.Handler) (restore func()) {
	old := wrapHandler
	wrapHandler = wrap
	return func() { wrapHandler = old }
}

// Store returns the running daemon's badger store (nil before Run opened
// it, or with another backend).
func (d *Server) Store() *store.DB {
	d.mu.Lock()
	defer d.mu.Unlock()
	db, _ := d.db.(*store.DB)
	return db
}
