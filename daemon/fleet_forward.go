package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
)

// The internal port: POST /internal/v1/submit takes a submit forwarded by
// a node that holds no bind of the carrier, over mutual TLS. The body holds
// the SMS text (with its code): it is never logged, on either side.

const (
	internalSubmitPath = "/internal/v1/submit"
	maxForwardBody     = 64 << 10
	// forwardGrace is kept from the send's time left for the answer's way
	// back (at most a quarter of it): the holder stops that much earlier
	// than the origin, so that its answer, ids or error, arrives.
	forwardGrace = 500 * time.Millisecond
)

// forwardRequest is a forwarded submit.
type forwardRequest struct {
	Carrier string `json:"carrier"`
	// TimeoutMS is how long the holder may take, in milliseconds (0: no
	// limit): the send's time left less forwardGrace, relative so that
	// the nodes' clocks do not matter.
	TimeoutMS int64 `json:"timeout_ms"`
	// Dup: the send accepts a duplicate after a lost session
	// (smpp.WithDuplicateAllowed).
	Dup bool `json:"dup"`
	// Failover: the origin's route has another carrier, so a stalled
	// carrier may be given up (smpp.WithFailoverAllowed).
	Failover bool    `json:"failover"`
	SMS      otp.SMS `json:"sms"`
}

// forwardReply is the node's answer: the message ids, or what went wrong
// (smpp.ForwardCode).
type forwardReply struct {
	IDs    []string `json:"ids,omitempty"`
	Code   string   `json:"code,omitempty"`
	Status uint32   `json:"status,omitempty"`
}

// forwarder sends submits to other nodes' internal ports.
type forwarder struct {
	client *http.Client
}

func newForwarder(clientTLS *tls.Config) *forwarder {
	// A holder that died without closing its connections (power, network)
	// is found by HTTP/2 pings within seconds, not at the send's deadline.
	tr := &http.Transport{TLSClientConfig: clientTLS, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second, DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		ForceAttemptHTTP2: true, HTTP2: &http.HTTP2Config{SendPingTimeout: 2 * time.Second, PingTimeout: 2 * time.Second}}
	return &forwarder{client: &http.Client{Transport: tr}}
}

// submit forwards sms to carrier on the node at addr. A request that
// never reached the node fails like an unbound carrier (the router tries
// the next); one that reached it and got no answer may have been sent
// (smpp.ErrUnanswered).
func (fw *forwarder) submit(ctx context.Context, addr, carrier string, sms otp.SMS) ([]string, error) {
	req := forwardRequest{Carrier: carrier, Dup: smpp.DuplicateAllowed(ctx), Failover: smpp.FailoverAllowed(ctx), SMS: sms}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		left -= min(forwardGrace, left/4)
		if left <= 0 {
			return nil, fmt.Errorf("daemon: forward to %s: %w", addr, context.DeadlineExceeded)
		}
		req.TimeoutMS = max(left.Milliseconds(), 1)
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, fmt.Errorf("daemon: forward: %w", err)
	}
	var wrote atomic.Bool // set on the transport's writer goroutine
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+internalSubmitPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("daemon: forward to %s: %w", addr, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := fw.client.Do(hr)
	if err != nil {
		if !wrote.Load() {
			return nil, fmt.Errorf("daemon: forward to %s: %w: %w", addr, smpp.ErrNotBound, scrubURL(err))
		}
		return nil, fmt.Errorf("daemon: forward to %s: %w: %w", addr, smpp.ErrUnanswered, scrubURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusBadRequest {
		// Refused before any submit (the body did not decode there).
		return nil, fmt.Errorf("daemon: forward to %s: HTTP 400: %w", addr, smpp.ErrNotBound)
	}
	var reply forwardReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxForwardBody)).Decode(&reply); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("daemon: forward to %s: HTTP %d: %w", addr, resp.StatusCode, smpp.ErrUnanswered)
	}
	if reply.Code != "" {
		return nil, fmt.Errorf("daemon: forward to %s: %w", addr, smpp.ForwardError(reply.Code, reply.Status))
	}
	if len(reply.IDs) == 0 {
		return nil, fmt.Errorf("daemon: forward to %s: no message id: %w", addr, smpp.ErrUnanswered)
	}
	return reply.IDs, nil
}

// scrubURL keeps the error of a failed request without its URL (it holds
// nothing secret, but the *url.Error text repeats the address).
func scrubURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// internalHandler serves the internal port.
func (d *Server) internalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+internalSubmitPath, d.serveForwarded)
	return mux
}

// serveForwarded submits a forwarded SMS on this node's own binds of the
// carrier (never forwarding it again).
func (d *Server) serveForwarded(w http.ResponseWriter, r *http.Request) {
	var req forwardRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxForwardBody)).Decode(&req); err != nil {
		http.Error(w, "bad forwarded submit", http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	run := d.runs[req.Carrier]
	d.mu.Unlock()
	reply := forwardReply{}
	if run == nil {
		reply.Code = smpp.FwdNotBound
	} else {
		ctx := smpp.WithFailoverAllowed(smpp.WithForwarded(r.Context()), req.Failover)
		if req.Dup {
			ctx = smpp.WithDuplicateAllowed(ctx)
		}
		if req.TimeoutMS > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
			defer cancel()
		}
		ids, err := run.carrier.Submit(ctx, req.SMS)
		if err != nil {
			reply.Code, reply.Status = smpp.ForwardCode(err)
			d.log.Debug("forwarded submit failed", keyCarrier, req.Carrier, keyRequestID, req.SMS.RequestID, keyError, err)
		} else {
			reply.IDs = ids
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&reply)
}

// startInternal listens on fleet.internal_listen with mutual TLS; it
// returns nil, nil when the key is empty.
func (d *Server) startInternal(cfg *Config) (*http.Server, net.Listener, *tls.Config, error) {
	if cfg.Fleet.InternalListen == "" {
		return nil, nil, nil, nil
	}
	serverTLS, clientTLS, err := fleetTLS(cfg.Fleet.InternalTLS)
	if err != nil {
		return nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.Fleet.InternalListen)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("daemon: fleet.internal_listen: %w", err)
	}
	srv := &http.Server{Handler: d.internalHandler(), TLSConfig: serverTLS, ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(d.log.With(keyComponent, "fleet").Handler(), slog.LevelWarn)}
	d.log.Info("internal port listening", keyInternalListen, ln.Addr().String())
	return srv, ln, clientTLS, nil
}

// serveInternal serves the internal port until Shutdown.
func serveInternal(srv *http.Server, ln net.Listener) error {
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("daemon: internal serve: %w", err)
	}
	return nil
}
