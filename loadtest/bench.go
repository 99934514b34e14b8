package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// BenchOptions configures Bench: the load (Options) and, with SimAddr, the
// SMSC simulator the gateway dials, which plays the handsets.
type BenchOptions struct {
	Options
	// SimAddr, when set, starts the simulator there; its codes verify.
	SimAddr, SimSystemID, SimPassword string
	// ReceiptDelay is the simulator's delay before each receipt;
	// negative: none.
	ReceiptDelay time.Duration
	// Wait is the longest wait for the gateway's /readyz.
	Wait time.Duration
	// CPUProfile and MemProfile, when set, are files for this process's
	// CPU profile of the run and its heap profile at the end (the load
	// tool profiling itself: it shares the machine with the gateway).
	CPUProfile, MemProfile string
	// Attack, when it names ranges, runs a pumping attack (Attack) with
	// Options's client and Concurrency as the legitimate traffic, instead
	// of the load of Run.
	Attack AttackConfig
}

// Bench is `otpgate bench` once its flags are parsed: it starts the
// simulator (with SimAddr), waits for the gateway's /readyz, runs the load
// and prints the report and the simulator's counters to stdout. Logs of
// the simulator (errors only) go to stderr. With CPUProfile or
// MemProfile it profiles itself from before the simulator starts to the
// end. It returns when the run is done or ctx ends.
func Bench(ctx context.Context, o BenchOptions, stdout, stderr io.Writer) error {
	stopProfiles, err := startProfiles(o.CPUProfile, o.MemProfile)
	if err != nil {
		return err
	}
	defer func() {
		// A profile lost does not fail the run it profiled.
		if err := stopProfiles(); err != nil {
			fmt.Fprintf(stderr, "otpgate bench: %v\n", err)
		}
	}()
	cfg := o.Options
	var sim *smsc.Server
	var hs *Handset
	if o.SimAddr != "" {
		hs = NewHandset()
		var err error
		// The simulator warns once per refused receipt: its counters, printed
		// at the end, say the same without flooding the terminal.
		simLog := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})
		sim, err = smsc.Listen(o.SimAddr, smsc.Options{SystemID: o.SimSystemID, Password: o.SimPassword,
			ReceiptDelay: o.ReceiptDelay, ReceiptTLV: true, KeepMessages: 1, Logger: slog.New(hs.Handler(simLog))})
		if err != nil {
			return err
		}
		defer sim.Close()
		cfg.Codes = hs.Code
		fmt.Fprintf(stdout, "smsc simulator on %s (system_id %s)\n", sim.Addr(), o.SimSystemID)
	}
	if err := waitReady(ctx, cfg.URL, o.Wait); err != nil {
		return err
	}
	if len(o.Attack.Ranges) > 0 {
		a := o.Attack
		a.URL, a.Concurrency, a.Prefix, a.TextID, a.Codes = cfg.URL, cfg.Concurrency, cfg.Prefix, cfg.TextID, cfg.Codes
		a.Legit = append(a.Legit, Client{ID: cfg.ClientID, Key: cfg.APIKey})
		if hs != nil {
			a.Delivered = hs.Received
		}
		if _, err := Attack(ctx, a, stdout); err != nil {
			return err
		}
	} else if _, err := Run(ctx, cfg, stdout); err != nil {
		return err
	}
	if sim != nil {
		st := sim.Stats()
		fmt.Fprintf(stdout, "simulator: %d submits accepted; receipts: %d sent (re-sends included), %d acked, %d refused by the gateway\n",
			st.Accepted, st.ReceiptsSent, st.ReceiptsAcked, st.ReceiptsNacked)
	}
	return nil
}

// waitReady polls url's /readyz until it answers 200 or wait has passed.
func waitReady(ctx context.Context, url string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url = strings.TrimRight(url, "/") + readyPath
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("loadtest: ready: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadtest: gateway at %s not ready: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
