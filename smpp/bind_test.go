package smpp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// recorder is an Observer that keeps the bind events, with their times.
type recorder struct {
	mu       sync.Mutex
	ups      []time.Time
	failures []string
	failedAt []time.Time
	results  map[string]int // submits by result
}

func (r *recorder) Submit(_, result string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results == nil {
		r.results = map[string]int{}
	}
	r.results[result]++
}

// submits returns how many submits had result.
func (r *recorder) submits(result string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results[result]
}

func (r *recorder) Receipt(string, string) {}
func (r *recorder) Degraded(string, bool)  {}

func (r *recorder) BindState(_, _ string, up bool) {
	if up {
		r.mu.Lock()
		r.ups = append(r.ups, time.Now())
		r.mu.Unlock()
	}
}

func (r *recorder) BindFailure(_, reason string) {
	r.mu.Lock()
	r.failures = append(r.failures, reason)
	r.failedAt = append(r.failedAt, time.Now())
	r.mu.Unlock()
}

func (r *recorder) bindUps() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.ups...)
}

func (r *recorder) bindFailures() ([]string, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failures...), append([]time.Time(nil), r.failedAt...)
}

// hold sleeps d: the window in which something must NOT happen. Only
// used for negative checks, which a slow machine cannot make fail.
func hold(d time.Duration) { time.Sleep(d) }

func logLines(buf *syncbuf.Buffer, substr string) []string {
	var out []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// TestCarrier_CredentialsRefused: a bind refused for its credentials is
// tried once, logged once at ERROR, counted with its reason, and tried
// again only after AuthRetryDelay or RetryAuthNow.
func TestCarrier_CredentialsRefused(t *testing.T) {
	tests := []struct {
		name, reason, statusName string
		status                   uint32 // 0: a wrong password, checked by the simulator
	}{
		{"WrongPassword", "invalid_password", "ESME_RINVPASWD", 0},
		{"InvalidPassword", "invalid_password", "ESME_RINVPASWD", smpp.StatusInvPaswd},
		{"InvalidSystemID", "invalid_system_id", "ESME_RINVSYSID", smpp.StatusInvSysID},
		{"InvalidSystemType", "invalid_system_type", "ESME_RINVSYSTYP", smpp.StatusInvSysTyp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
			cfg := carrierConfig("a", sim.Addr())
			if tt.status == 0 {
				cfg.Password = "wrong-pw-do-not-log"
			} else {
				sim.SetBindStatus(tt.status)
			}
			obs := &recorder{}
			cfg.Observer, cfg.AuthRetryDelay = obs, time.Hour
			var buf syncbuf.Buffer
			c := runCarrierLog(t, cfg, nil, slog.New(slog.NewTextHandler(&buf, nil)))

			eventually(t, "the bind failure reported", func() bool { r, _ := obs.bindFailures(); return len(r) == 1 })
			hold(300 * time.Millisecond) // far below auth_retry_delay
			if r, _ := obs.bindFailures(); len(r) != 1 || r[0] != tt.reason {
				t.Fatalf("bind failures: got %q, want one %q", r, tt.reason)
			}
			if got := sim.Stats().BindsRejected; got != 1 {
				t.Fatalf("bind attempts: got %d, want 1 before auth_retry_delay", got)
			}
			if _, err := c.Submit(context.Background(), testSMS("code 1234")); !errors.Is(err, smpp.ErrNotBound) {
				t.Fatalf("Submit: got %v, want ErrNotBound", err)
			}
			lines := logLines(&buf, "level=ERROR")
			if len(lines) != 1 || !strings.Contains(lines[0], "bind refused") || !strings.Contains(lines[0], tt.statusName) ||
				!strings.Contains(lines[0], "carrier=a") || !strings.Contains(lines[0], "bind=transceiver") {
				t.Fatalf("ERROR lines: got %q, want one naming carrier, bind and %s", lines, tt.statusName)
			}
			if logs := buf.String(); strings.Contains(logs, cfg.Password) {
				t.Fatalf("the password is in the log:\n%s", logs)
			}

			if tt.status == 0 {
				// Still wrong: RetryAuthNow makes exactly one more attempt.
				c.RetryAuthNow()
				eventually(t, "the retry", func() bool { return sim.Stats().BindsRejected == 2 })
				hold(200 * time.Millisecond)
				if got := sim.Stats().BindsRejected; got != 2 {
					t.Fatalf("bind attempts after RetryAuthNow: got %d, want 2", got)
				}
				return
			}
			sim.SetBindStatus(0) // the carrier fixed the account
			c.RetryAuthNow()
			waitBound(t, c, 1)
		})
	}
}

// TestCarrier_CredentialsProbedByOneBind: with several binds, refused
// credentials are tried again by one bind, not all of them.
func TestCarrier_CredentialsProbedByOneBind(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetBindStatus(smpp.StatusInvPaswd)
	cfg := carrierConfig("a", sim.Addr())
	cfg.Binds, cfg.AuthRetryDelay = 3, time.Hour
	c := runCarrier(t, cfg, nil)
	eventually(t, "a refused bind", func() bool { return sim.Stats().BindsRejected >= 1 })
	hold(200 * time.Millisecond)
	first := sim.Stats().BindsRejected
	if first > 3 {
		t.Fatalf("bind attempts at start: got %d, want at most one per bind (3)", first)
	}
	c.RetryAuthNow()
	eventually(t, "the probe", func() bool { return sim.Stats().BindsRejected == first+1 })
	hold(200 * time.Millisecond)
	if got := sim.Stats().BindsRejected; got != first+1 {
		t.Fatalf("bind attempts after RetryAuthNow: got %d, want %d (one probe)", got, first+1)
	}
	sim.SetBindStatus(0)
	c.RetryAuthNow()
	waitBound(t, c, 3) // the probe's success lets every bind go
}

// TestCarrier_CredentialsRetriedAfterDelay: without RetryAuthNow, the
// credentials are tried again every AuthRetryDelay.
func TestCarrier_CredentialsRetriedAfterDelay(t *testing.T) {
	const delay = 200 * time.Millisecond
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetBindStatus(smpp.StatusInvSysTyp)
	obs := &recorder{}
	cfg := carrierConfig("a", sim.Addr())
	cfg.Observer, cfg.AuthRetryDelay = obs, delay
	c := runCarrier(t, cfg, nil)
	eventually(t, "3 refused binds", func() bool { r, _ := obs.bindFailures(); return len(r) >= 3 })
	reasons, at := obs.bindFailures()
	for i := 1; i < 3; i++ {
		// The gate opens delay after the refusal was recorded, a moment
		// before the observer heard of it: allow a little.
		if gap := at[i].Sub(at[i-1]); gap < delay*3/4 {
			t.Errorf("retry %d after %v, want about %v", i, gap, delay)
		}
		if reasons[i] != "invalid_system_type" {
			t.Errorf("reason %d: got %q, want invalid_system_type", i, reasons[i])
		}
	}
	sim.SetBindStatus(0)
	waitBound(t, c, 1)
}

// TestCarrier_BindFailureReasons: failures other than credentials are
// retried with back-off and counted with their reason.
func TestCarrier_BindFailureReasons(t *testing.T) {
	t.Run("Refused", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		sim.SetBindStatus(smpp.StatusBindFail)
		obs := &recorder{}
		cfg := carrierConfig("a", sim.Addr())
		cfg.Observer = obs
		runCarrier(t, cfg, nil)
		eventually(t, "2 refused binds", func() bool { r, _ := obs.bindFailures(); return len(r) >= 2 })
		if r, _ := obs.bindFailures(); r[0] != "refused" || r[1] != "refused" {
			t.Fatalf("reasons: got %q, want refused", r)
		}
	})
	t.Run("Network", func(t *testing.T) {
		obs := &recorder{}
		cfg := carrierConfig("a", deadAddr(t))
		cfg.Observer = obs
		runCarrier(t, cfg, nil)
		eventually(t, "a failed dial", func() bool { r, _ := obs.bindFailures(); return len(r) >= 1 })
		if r, _ := obs.bindFailures(); r[0] != "network" {
			t.Fatalf("reason: got %q, want network", r[0])
		}
	})
}

// TestCarrier_FlappingSMSCBacksOff: an SMSC that unbinds every session
// soon after the bind gets binds spaced by a growing delay.
func TestCarrier_FlappingSMSCBacksOff(t *testing.T) {
	const step = 50 * time.Millisecond
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetUnbindAfter(10 * time.Millisecond)
	obs := &recorder{}
	cfg := carrierConfig("a", sim.Addr())
	cfg.Observer = obs
	cfg.ReconnectDelay, cfg.ReconnectDelayMax, cfg.StableAfter = step, time.Minute, time.Hour
	start := time.Now()
	runCarrier(t, cfg, nil)

	// Each session lives >= 10ms and the waits are >= 25, 50, 100, 200ms
	// (half of each step): the 5th bind cannot come before 415ms.
	hold(time.Until(start.Add(400 * time.Millisecond)))
	if got := sim.Stats().Binds; got > 4 {
		t.Fatalf("binds in the first 400ms: got %d, want at most 4", got)
	}
	eventually(t, "6 binds", func() bool { return len(obs.bindUps()) >= 6 })
	ups := obs.bindUps()
	gaps := make([]time.Duration, 0, len(ups)-1)
	for k := 1; k < len(ups); k++ {
		gaps = append(gaps, ups[k].Sub(ups[k-1]).Round(time.Millisecond))
	}
	t.Logf("gaps between binds: %v", gaps)
	for k := 1; k < 6; k++ {
		least := step / 2 << (k - 1)
		if gap := ups[k].Sub(ups[k-1]); gap < least {
			t.Errorf("bind %d came %v after bind %d, want at least %v", k+1, gap, k, least)
		}
	}
	if st := sim.Stats(); st.UnbindsSent < 5 {
		t.Fatalf("the simulator sent %d unbinds, want at least 5", st.UnbindsSent)
	}
}

// TestCarrier_LostBindRedial: a bind that stayed up StableAfter is
// redialled at once; one lost younger waits ReconnectDelay.
func TestCarrier_LostBindRedial(t *testing.T) {
	run := func(t *testing.T, stableAfter time.Duration) (*smsc.Server, *smpp.Carrier) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		cfg := carrierConfig("a", sim.Addr())
		cfg.ReconnectDelay, cfg.StableAfter = time.Hour, stableAfter
		c := runCarrier(t, cfg, nil)
		waitBound(t, c, 1)
		return sim, c
	}
	t.Run("Stable", func(t *testing.T) {
		sim, c := run(t, 100*time.Millisecond)
		hold(200 * time.Millisecond)
		sim.DropConnections()
		eventually(t, "the rebind", func() bool { return sim.Stats().Binds == 2 && c.Bound() == 1 })
	})
	t.Run("Young", func(t *testing.T) {
		sim, c := run(t, time.Hour)
		sim.DropConnections()
		eventually(t, "the loss", func() bool { return c.Bound() == 0 })
		hold(300 * time.Millisecond)
		if got := sim.Stats().Binds; got != 1 {
			t.Fatalf("binds: got %d, want 1 (the redial waits reconnect_delay)", got)
		}
	})
}

// TestCarrier_SilentSMSCRedialled: an SMSC that stops answering anything
// while keeping the connection open loses the session after
// InactivityTimeout, and the carrier binds again.
func TestCarrier_SilentSMSCRedialled(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.EnquireLink, cfg.InactivityTimeout = 20*time.Millisecond, 200*time.Millisecond
	var buf syncbuf.Buffer
	c := runCarrierLog(t, cfg, nil, slog.New(slog.NewTextHandler(&buf, nil)))
	waitBound(t, c, 1)
	sim.SetSilent(true)
	eventually(t, "the session dropped", func() bool { return c.Bound() == 0 })
	if len(logLines(&buf, "smsc silent")) != 1 {
		t.Fatalf("want one 'smsc silent' line, got:\n%s", buf.String())
	}
	sim.SetSilent(false) // the redial's bind, held meanwhile, is answered
	eventually(t, "the rebind", func() bool { return c.Bound() == 1 && sim.Stats().Binds == 2 })
}

// TestCarrier_SlowEnquireLinkKeepsSession: an SMSC whose enquire_link
// answers are late, or never come, keeps its session as long as it sends
// some PDU within InactivityTimeout.
func TestCarrier_SlowEnquireLinkKeepsSession(t *testing.T) {
	tests := []struct {
		name    string
		sim     smsc.Options
		delay   time.Duration
		comment string
	}{
		{"AnswersLate", smsc.Options{ReceiptDelay: -1}, 150 * time.Millisecond, "answers 3 intervals late"},
		{"NeverAnswersButTalks", smsc.Options{ReceiptDelay: -1, EnquireLink: 30 * time.Millisecond}, -1,
			"never answers, sends its own enquire_link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSMSC(t, tt.sim)
			sim.SetEnquireLinkDelay(tt.delay)
			cfg := carrierConfig("a", sim.Addr())
			// Margins for a busy machine: inactivity_timeout is ten times
			// the SMSC's lateness, the watch two inactivity timeouts.
			cfg.EnquireLink, cfg.InactivityTimeout = 50*time.Millisecond, 1500*time.Millisecond
			c := runCarrier(t, cfg, nil)
			waitBound(t, c, 1)
			hold(3 * time.Second) // 60 enquire_links, 2 inactivity timeouts
			if st := sim.Stats(); st.Binds != 1 || c.Bound() != 1 {
				t.Fatalf("%s: binds %d, bound %d; want the first bind kept", tt.comment, st.Binds, c.Bound())
			}
			if st := sim.Stats(); st.EnquireLinks < 10 {
				t.Fatalf("the simulator got %d enquire_link, want the carrier's keepalives", st.EnquireLinks)
			}
			if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
				t.Fatalf("Submit: %v", err)
			}
		})
	}
}

// TestCarrier_SubmitDebugLog: at debug level a submit is logged with its
// request id, the masked number, the parts and the masked text (the line is
// built only at that level, which BenchmarkCarrierSubmit's allocations
// show; TestCarrier_LogsNoSecrets keeps the code and the number out).
func TestCarrier_SubmitDebugLog(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	var buf syncbuf.Buffer
	c := runCarrierLog(t, carrierConfig("debuglog", sim.Addr()), nil,
		slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	waitBound(t, c, 1)
	sms := testSMS("Your code is 918273")
	sms.Masked = "Your code is ******"
	if _, err := c.Submit(context.Background(), sms); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]string
	for _, r := range textRecords(t, buf.String()) {
		if r["msg"] == "submitted" {
			lines = append(lines, r)
		}
	}
	if len(lines) != 1 || lines[0]["request_id"] != "req-1" || lines[0]["to"] != sms.MaskedTo ||
		lines[0]["text"] != sms.Masked || lines[0]["parts"] != "1" {
		t.Errorf("%v, want one submit line with request id, masked number, parts and masked text", lines)
	}
}
