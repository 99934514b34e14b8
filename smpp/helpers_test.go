package smpp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

const (
	testSystemID = "carrier-a"
	testPassword = "s3cret-pw"
)

// newSMSC starts a simulator on 127.0.0.1:0 that wants testSystemID and
// testPassword, closed at the end of the test.
func newSMSC(tb testing.TB, cfg smsc.Options) *smsc.Server {
	tb.Helper()
	if cfg.SystemID == "" {
		cfg.SystemID, cfg.Password = testSystemID, testPassword
	}
	s, err := smsc.Listen("127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatalf("smsc.Listen: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// carrierConfig returns a config for the simulator at addr. Its binds are
// redialled after a short ReconnectDelay, so that tests which drop
// connections do not wait the production 10s.
func carrierConfig(name, addr string) smpp.CarrierOptions {
	return smpp.CarrierOptions{Name: name, Address: addr, SystemID: testSystemID, Password: testPassword,
		ReconnectDelay: 20 * time.Millisecond}
}

// runCarrier starts a carrier's Run; cleanup cancels it and checks that
// Run returns nil.
func runCarrier(tb testing.TB, cfg smpp.CarrierOptions, h smpp.ReceiptHandler) *smpp.Carrier {
	tb.Helper()
	return runCarrierLog(tb, cfg, h, nil)
}

// runCarrierLog is runCarrier with a logger.
func runCarrierLog(tb testing.TB, cfg smpp.CarrierOptions, h smpp.ReceiptHandler, logger *slog.Logger) *smpp.Carrier {
	tb.Helper()
	c := smpp.NewCarrier(cfg, h, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: got %v, want nil", err)
		}
	})
	return c
}

// eventually polls cond until it holds; it fails the test after 10s.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitBound(tb testing.TB, c *smpp.Carrier, n int) {
	tb.Helper()
	eventually(tb, "carrier bound", func() bool { return c.Bound() == n })
}

// deadAddr returns an address where nothing listens.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testSMS(text string) otp.SMS {
	return otp.SMS{RequestID: "req-1", ClientID: "client-1", Source: "OTPGATE", To: "447700900123", MaskedTo: "+44-77******23",
		Country: "GB", Text: text, Masked: "masked"}
}

func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// calls records what a carrier hands on (receipts, MO messages); fail
// makes the first n calls fail.
type calls[T any] struct {
	mu   sync.Mutex
	got  []T
	fail int
	wake chan struct{}
}

func (r *calls[T]) record(v T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("store unavailable")
	}
	r.got = append(r.got, v)
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// wait returns what was recorded once there are at least n.
func (r *calls[T]) wait(tb testing.TB, n int) []T {
	tb.Helper()
	var out []T
	eventually(tb, "recorded", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		out = append([]T(nil), r.got...)
		return len(out) >= n
	})
	return out
}

// handler records receipts.
type handler struct{ calls[otp.Receipt] }

func newHandler() *handler {
	return &handler{calls[otp.Receipt]{wake: make(chan struct{}, 1000)}}
}

func (h *handler) HandleReceipt(_ context.Context, r otp.Receipt) error { return h.record(r) }

// moHandler records MO messages.
type moHandler struct{ calls[otp.MO] }

func (h *moHandler) HandleMO(_ context.Context, m otp.MO) error { return h.record(m) }

// rawPDU encodes a PDU header and body.
func rawPDU(id, status, seq uint32, body []byte) []byte {
	b := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint32(b[0:], uint32(16+len(body)))
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return append(b, body...)
}

// textRecords parses the lines of slog's text handler into their
// attributes (key=value, a quoted value unquoted), so that a test matches
// a message or a value whole: "bound" must not be found in "unbound".
func textRecords(tb testing.TB, logs string) []map[string]string {
	tb.Helper()
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		rec := map[string]string{}
		for rest := line; rest != ""; {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				tb.Fatalf("not a text log line: %q", line)
			}
			key, v := rest[:eq], rest[eq+1:]
			if strings.HasPrefix(v, `"`) {
				q, err := strconv.QuotedPrefix(v)
				if err != nil {
					tb.Fatalf("bad quoted value in %q: %v", line, err)
				}
				rest = v[len(q):]
				v, _ = strconv.Unquote(q)
			} else if sp := strings.IndexByte(v, ' '); sp >= 0 {
				v, rest = v[:sp], v[sp:]
			} else {
				rest = ""
			}
			rec[key] = v
			rest = strings.TrimPrefix(rest, " ")
		}
		out = append(out, rec)
	}
	return out
}

// hasRecord reports whether one of recs holds every key and value of want.
func hasRecord(recs []map[string]string, want map[string]string) bool {
next:
	for _, r := range recs {
		for k, v := range want {
			if r[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}

// submitForReceipt submits one SMS through a carrier named name bound to a
// simulator made from cfg (receipts after 1 ms) and waits for its receipt.
// want is the state the simulator's ReceiptState stands for.
func submitForReceipt(t *testing.T, cfg smsc.Options, name string) (sim *smsc.Server, ids []string, r otp.Receipt, want otp.State) {
	t.Helper()
	cfg.ReceiptDelay = time.Millisecond
	sim = newSMSC(t, cfg)
	h := newHandler()
	c := runCarrier(t, carrierConfig(name, sim.Addr()), h)
	waitBound(t, c, 1)
	ids, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	want = otp.StateDelivered
	if cfg.ReceiptState == "UNDELIV" {
		want = otp.StateUndeliverable
	}
	return sim, ids, h.wait(t, 1)[0], want
}
