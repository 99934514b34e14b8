package daemon

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/otpgate/otpgate/callback"
	"github.com/otpgate/otpgate/metrics"
	"github.com/otpgate/otpgate/otp"
)

// callbackOptions are the dispatcher's options; the zero value is the
// production schedule. Tests shorten the retry delay through it.
var callbackOptions callback.Options

// startCallbacks runs in g, until ctx is done, the dispatcher of the
// receipt and MO callbacks that db queues, and the watch that wakes it when one
// is queued. Clients' callback_url and callback_secret are read from the
// settings svc has in force at each try, so a reload applies at once.
func startCallbacks(ctx context.Context, g *errgroup.Group, db storeBackend, svc *otp.Service, log *slog.Logger, m *metrics.Registry) {
	opts := callbackOptions
	opts.Logger = log.With(keyComponent, "callbacks")
	if m != nil {
		opts.Observe, opts.Circuit = m.Callback, m.CallbackCircuit
	}
	d := callback.New(db, func(clientID string, kind otp.CallbackKind) (string, string, bool) {
		return svc.Settings().CallbackFor(clientID, kind)
	}, opts)
	g.Go(func() error { return d.Run(ctx) })
	g.Go(func() error { return db.WatchCallbacks(ctx, d.Notify) })
}
