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
	// forwardGrace is added to the forwarded send's own deadline for the
	// round trip between the nodes.
	forwardGrace = 2 * time.Second
)

// forwardRequest is a forwarded submit.
type forwardRequest struct {
	Carrier string `json:"carrier"`
	// Deadline is the send's deadline, unix nanoseconds (0: none).
	Deadline int64 `json:"deadline"`
	// Dup: the send accepts a duplicate after a lost session
	// (smpp.WithDuplicateAllowed).
	Dup bool    `json:"dup"`
	SMS otp.SMS `json:"sms"`
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
	tr := &http.Transport{TLSClientConfig: clientTLS, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second, DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		ForceAttemptHTTP2: true}
	return &forwarder{client: &http.Client{Transport: tr}}
}

// submit forwards sms to carrier on the node at addr. A request that
// never reached the node fails like an unbound carrier (the router tries
// the next); one that reached it and got no answer may have been sent
// (smpp.ErrUnanswered).
func (fw *forwarder) submit(ctx context.Context, addr, carrier string, sms otp.SMS) ([]string, error) {
	req := forwardRequest{Carrier: carrier, Dup: smpp.DuplicateAllowed(ctx), SMS: sms}
	if dl, ok := ctx.Deadline(); ok {
		req.Deadline = dl.UnixNano()
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(forwardGrace))
		defer cancel()
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, fmt.Errorf("daemon: forward: %w", err)
	}
	var wrote bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true }})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+internalSubmitPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("daemon: forward to %s: %w", addr, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := fw.client.Do(hr)
	if err != nil {
		if !wrote {
			return nil, fmt.Errorf("daemon: forward to %s: %w: %w", addr, smpp.ErrNotBound, scrubURL(err))
		}
		return nil, fmt.Errorf("daemon: forward to %s: %w: %w", addr, smpp.ErrUnanswered, scrubURL(err))
	}
	defer resp.Body.Close()
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
		ctx := smpp.WithForwarded(r.Context())
		if req.Dup {
			ctx = smpp.WithDuplicateAllowed(ctx)
		}
		if req.Deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, time.Unix(0, req.Deadline))
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
