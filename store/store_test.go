package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// clock is a settable clock for Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func openDB(tb testing.TB, dir string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func message(id, carrier string, partIDs ...string) otp.Message {
	m := otp.Message{RequestID: id, ClientID: "c1", Number: "919876543210", Display: "+91-98******10",
		Carrier: carrier, SubmittedAt: time.Unix(1_700_000_000, 0).UTC()}
	for _, p := range partIDs {
		m.Parts = append(m.Parts, otp.Part{MessageID: p, State: otp.StateAccepted})
	}
	return m
}

// setRecord returns a SaveSend fn that stores a record living until keep.
func setRecord(keep time.Time, attempts int) func(*otp.Record, bool) {
	return func(r *otp.Record, found bool) {
		r.CodeHash = []byte("hash")
		r.Attempts = attempts
		r.KeepUntil = keep
	}
}

func saveSend(tb testing.TB, db *store.DB, key string, msg otp.Message, fn func(*otp.Record, bool)) otp.Message {
	tb.Helper()
	m, err := db.SaveSend(context.Background(), key, msg, fn)
	if err != nil {
		tb.Fatalf("SaveSend: %v", err)
	}
	return m
}

func TestDB_GetOTP(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Now())
	db := openDB(t, t.TempDir(), store.Options{Now: clk.now})

	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := db.GetOTP(ctx, "c1/none"); !errors.Is(err, otp.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("OK", func(t *testing.T) {
		keep := clk.now().Add(time.Hour)
		saveSend(t, db, "c1/1", message("r1", "a", "1"), func(r *otp.Record, found bool) {
			if found {
				t.Errorf("found = true for a new key")
			}
			if r.Key != "c1/1" {
				t.Errorf("got Key %q, want c1/1", r.Key)
			}
			setRecord(keep, 2)(r, found)
			r.RequestID = "r1"
		})
		rec, err := db.GetOTP(ctx, "c1/1")
		if err != nil {
			t.Fatalf("GetOTP: %v", err)
		}
		if rec.Key != "c1/1" || string(rec.CodeHash) != "hash" || rec.Attempts != 2 || rec.RequestID != "r1" || !rec.KeepUntil.Equal(keep) {
			t.Fatalf("got %+v", rec)
		}
	})

	t.Run("KeepUntilPastIsDeleted", func(t *testing.T) {
		saveSend(t, db, "c1/2", message("r2", "a", "2"), setRecord(clk.now().Add(time.Hour), 0))
		err := db.UpdateOTP(ctx, "c1/2", func(r *otp.Record, found bool) (otp.Change, error) {
			r.KeepUntil = clk.now().Add(-time.Second)
			return otp.Put, nil
		})
		if err != nil {
			t.Fatalf("UpdateOTP: %v", err)
		}
		if _, err := db.GetOTP(ctx, "c1/2"); !errors.Is(err, otp.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		saveSend(t, db, "c1/3", message("r3", "a", "3"), setRecord(time.Time{}, 0))
		if _, err := db.GetOTP(ctx, "c1/3"); !errors.Is(err, otp.ErrNotFound) {
			t.Fatalf("zero KeepUntil: got %v, want ErrNotFound", err)
		}
	})

	t.Run("ExpiredByClock", func(t *testing.T) {
		saveSend(t, db, "c1/4", message("r4", "a", "4"), setRecord(clk.now().Add(time.Minute), 3))
		clk.add(time.Minute)
		defer clk.add(-time.Minute)
		if _, err := db.GetOTP(ctx, "c1/4"); !errors.Is(err, otp.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		err := db.UpdateOTP(ctx, "c1/4", func(r *otp.Record, found bool) (otp.Change, error) {
			if found || r.Attempts != 0 || r.Key != "c1/4" {
				t.Errorf("got found %v, %+v; want a fresh record", found, r)
			}
			return otp.Keep, nil
		})
		if err != nil {
			t.Fatalf("UpdateOTP: %v", err)
		}
	})
}

func TestDB_UpdateOTP(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)

	t.Run("ErrorIsCommitted", func(t *testing.T) {
		saveSend(t, db, "k", message("r1", "a", "1"), setRecord(keep, 0))
		err := db.UpdateOTP(ctx, "k", func(r *otp.Record, found bool) (otp.Change, error) {
			r.Attempts++
			return otp.Put, otp.ErrInvalidOTP
		})
		if !errors.Is(err, otp.ErrInvalidOTP) {
			t.Fatalf("got %v, want ErrInvalidOTP", err)
		}
		rec, err := db.GetOTP(ctx, "k")
		if err != nil || rec.Attempts != 1 {
			t.Fatalf("got %+v, %v; want Attempts 1", rec, err)
		}
	})

	t.Run("Keep", func(t *testing.T) {
		err := db.UpdateOTP(ctx, "k", func(r *otp.Record, found bool) (otp.Change, error) {
			r.Attempts = 99
			return otp.Keep, otp.ErrMaxAttempts
		})
		if !errors.Is(err, otp.ErrMaxAttempts) {
			t.Fatalf("got %v, want ErrMaxAttempts", err)
		}
		if rec, _ := db.GetOTP(ctx, "k"); rec.Attempts != 1 {
			t.Fatalf("got Attempts %d, want 1", rec.Attempts)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if err := db.UpdateOTP(ctx, "k", func(*otp.Record, bool) (otp.Change, error) { return otp.Delete, nil }); err != nil {
			t.Fatalf("UpdateOTP: %v", err)
		}
		if _, err := db.GetOTP(ctx, "k"); !errors.Is(err, otp.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("ResendKeepsAttempts", func(t *testing.T) {
		saveSend(t, db, "k2", message("r2", "a", "2"), setRecord(keep, 4))
		saveSend(t, db, "k2", message("r3", "a", "3"), func(r *otp.Record, found bool) {
			if !found || r.Attempts != 4 {
				t.Errorf("got found %v, Attempts %d; want true, 4", found, r.Attempts)
			}
			r.RequestID = "r3"
		})
		rec, err := db.GetOTP(ctx, "k2")
		if err != nil || rec.Attempts != 4 || rec.RequestID != "r3" {
			t.Fatalf("got %+v, %v", rec, err)
		}
	})
}

func TestDB_UpdateOTP_Concurrent(t *testing.T) {
	const n = 50
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)

	run := func(fn func(*otp.Record, bool) (otp.Change, error)) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = db.UpdateOTP(ctx, "k", fn)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}

	t.Run("WrongGuesses", func(t *testing.T) {
		saveSend(t, db, "k", message("r1", "a", "1"), setRecord(keep, 0))
		errs := run(func(r *otp.Record, found bool) (otp.Change, error) {
			if !found {
				return otp.Keep, otp.ErrNotFound
			}
			r.Attempts++
			return otp.Put, otp.ErrInvalidOTP
		})
		for _, err := range errs {
			if !errors.Is(err, otp.ErrInvalidOTP) {
				t.Fatalf("got %v, want ErrInvalidOTP", err)
			}
		}
		rec, err := db.GetOTP(ctx, "k")
		if err != nil || rec.Attempts != n {
			t.Fatalf("got Attempts %d (%v), want %d", rec.Attempts, err, n)
		}
	})

	t.Run("OneVerifies", func(t *testing.T) {
		saveSend(t, db, "k", message("r2", "a", "2"), setRecord(keep, 0))
		errs := run(func(r *otp.Record, found bool) (otp.Change, error) {
			if !found {
				return otp.Keep, otp.ErrNotFound
			}
			return otp.Delete, nil
		})
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, otp.ErrNotFound):
				t.Fatalf("got %v, want nil or ErrNotFound", err)
			}
		}
		if ok != 1 {
			t.Fatalf("got %d successes, want 1", ok)
		}
	})
}

func TestDB_ApplyReceipt_IDForms(t *testing.T) {
	tests := []struct {
		name      string
		submitted string
		receipt   string
		carrier   string // of the receipt; "" means the message's
		matched   bool
	}{
		{"Exact", "12345", "12345", "", true},
		{"ExactHex", "7f3a9c", "7F3A9C", "", true},
		{"UUID", "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b", "A1B2C3D4-0000-4E5F-8A9B-0C1D2E3F4A5B", "", true},
		{"ReceiptLeadingZeros", "12345", "0000012345", "", true},
		{"SubmitLeadingZeros", "000000001A", "1A", "", true},
		{"HexSubmittedDecimalReceipt", "1A", "26", "", true},
		{"DecimalSubmittedHexReceipt", "26", "1A", "", true},
		{"DecimalSubmittedPaddedHexReceipt", "26", "000000001A", "", true},
		{"BigDecimalVsHex", "18446744073709551617", "10000000000000001", "", true},
		{"Unknown", "12345", "54321", "", false},
		{"OtherCarrier", "12345", "12345", "b", false},
		{"Empty", "12345", "", "", false},
	}
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := fmt.Sprintf("c%d", i)
			reqID := "req-" + tt.name
			saveSend(t, db, "k/"+tt.name, message(reqID, carrier, "x", tt.submitted), setRecord(keep, 0))
			rc := carrier
			if tt.carrier != "" {
				rc = tt.carrier
			}
			done := time.Unix(1_700_000_100, 0).UTC()
			m, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: rc, MessageID: tt.receipt,
				State: otp.StateDelivered, Error: "000", DoneAt: done})
			if err != nil {
				t.Fatalf("ApplyReceipt: %v", err)
			}
			if matched != tt.matched || changed != tt.matched {
				t.Fatalf("got matched %v changed %v, want %v", matched, changed, tt.matched)
			}
			stored, err := db.Message(ctx, reqID)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			if stored.Parts[0].State != otp.StateAccepted {
				t.Errorf("part 0: got %s, want ACCEPTED", stored.Parts[0].State)
			}
			want := otp.StateAccepted
			if tt.matched {
				want = otp.StateDelivered
				if m.RequestID != reqID || m.Parts[1].State != otp.StateDelivered || !m.Parts[1].DoneAt.Equal(done) || m.Parts[1].Error != "000" {
					t.Errorf("returned %+v", m)
				}
			}
			if got := stored.Parts[1].State; got != want {
				t.Fatalf("part 1: got %s, want %s", got, want)
			}
		})
	}
}

func TestDB_ApplyReceipt_States(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	saveSend(t, db, "k", message("r1", "a", "100", "101"), setRecord(time.Now().Add(time.Hour), 0))
	steps := []struct {
		name    string
		id      string
		state   otp.State
		changed bool
		want    [2]otp.State
	}{
		{"Accepted", "100", otp.StateAccepted, false, [2]otp.State{otp.StateAccepted, otp.StateAccepted}},
		{"Delivered", "100", otp.StateDelivered, true, [2]otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"Duplicate", "100", otp.StateDelivered, false, [2]otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"FinalKept", "100", otp.StateUndeliverable, false, [2]otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"NonFinalAfterFinal", "100", otp.StateAccepted, false, [2]otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"OtherPart", "101", otp.StateExpired, true, [2]otp.State{otp.StateDelivered, otp.StateExpired}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			m, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: s.id, State: s.state})
			if err != nil || !matched {
				t.Fatalf("got matched %v, %v", matched, err)
			}
			if changed != s.changed {
				t.Errorf("got changed %v, want %v", changed, s.changed)
			}
			stored, err := db.Message(ctx, "r1")
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			for i, want := range s.want {
				if m.Parts[i].State != want || stored.Parts[i].State != want {
					t.Errorf("part %d: got returned %s stored %s, want %s", i, m.Parts[i].State, stored.Parts[i].State, want)
				}
			}
		})
	}
}

func TestDB_ApplyReceipt_BeforeSaveSend(t *testing.T) {
	tests := []struct {
		name, receipt, submitted string
	}{
		{"Exact", "777", "777"},
		{"LeadingZeros", "000777", "777"},
		{"HexReceipt", "1A", "26"},
		{"DecimalReceipt", "26", "1A"},
	}
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := fmt.Sprintf("c%d", i)
			done := time.Unix(1_700_000_200, 0).UTC()
			_, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: carrier, MessageID: tt.receipt,
				State: otp.StateUndeliverable, Error: "001", DoneAt: done})
			if err != nil || matched {
				t.Fatalf("got matched %v, %v; want false, nil", matched, err)
			}
			m := saveSend(t, db, "k"+tt.name, message("r-"+tt.name, carrier, tt.submitted), setRecord(keep, 0))
			if p := m.Parts[0]; p.State != otp.StateUndeliverable || p.Error != "001" || !p.DoneAt.Equal(done) {
				t.Fatalf("returned part %+v, want the receipt applied", p)
			}
			stored, err := db.Message(ctx, "r-"+tt.name)
			if err != nil || stored.Parts[0].State != otp.StateUndeliverable {
				t.Fatalf("stored %+v, %v", stored, err)
			}
			// The pending receipt is used up: another message of that id
			// (a carrier reusing ids) does not get it.
			m = saveSend(t, db, "k2"+tt.name, message("s-"+tt.name, carrier, tt.submitted), setRecord(keep, 0))
			if m.Parts[0].State != otp.StateAccepted {
				t.Fatalf("second message: got %s, want ACCEPTED", m.Parts[0].State)
			}
		})
	}
}

// TestDB_ReceiptRacesSaveSend runs a receipt concurrently with the SaveSend
// of its message: whichever commits first, the receipt ends up applied.
func TestDB_ReceiptRacesSaveSend(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)
	for i := range 20 {
		id := fmt.Sprintf("%d", 5000+i)
		reqID := "r" + id
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := db.SaveSend(ctx, "k"+id, message(reqID, "a", id), setRecord(keep, 0)); err != nil {
				t.Errorf("SaveSend: %v", err)
			}
		})
		wg.Go(func() {
			if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered}); err != nil {
				t.Errorf("ApplyReceipt: %v", err)
			}
		})
		wg.Wait()
		m, err := db.Message(ctx, reqID)
		if err != nil {
			t.Fatalf("Message: %v", err)
		}
		if m.Parts[0].State != otp.StateDelivered {
			t.Fatalf("%s: got %s, want DELIVERED", id, m.Parts[0].State)
		}
	}
}

func TestDB_Reopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keep := time.Now().Add(time.Hour)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := db.SaveSend(ctx, "k", message("r1", "a", "26"), setRecord(keep, 3)); err != nil {
		t.Fatalf("SaveSend: %v", err)
	}
	if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "99", State: otp.StateDelivered}); err != nil {
		t.Fatalf("ApplyReceipt: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	db = openDB(t, dir, store.Options{})
	rec, err := db.GetOTP(ctx, "k")
	if err != nil || rec.Attempts != 3 {
		t.Fatalf("GetOTP: got %+v, %v", rec, err)
	}
	_, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "1A", State: otp.StateDelivered})
	if err != nil || !matched || !changed {
		t.Fatalf("ApplyReceipt after reopen: got matched %v changed %v, %v", matched, changed, err)
	}
	m := saveSend(t, db, "k2", message("r2", "a", "99"), setRecord(keep, 0))
	if m.Parts[0].State != otp.StateDelivered {
		t.Fatalf("pending receipt after reopen: got %s, want DELIVERED", m.Parts[0].State)
	}
}

func TestDB_Message(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	want := message("r1", "a", "1", "2")
	saveSend(t, db, "k", want, setRecord(time.Now().Add(time.Hour), 0))

	t.Run("OK", func(t *testing.T) {
		got, err := db.Message(ctx, "r1")
		if err != nil {
			t.Fatalf("Message: %v", err)
		}
		if got.RequestID != want.RequestID || got.ClientID != want.ClientID || got.Number != want.Number ||
			got.Display != want.Display || got.Carrier != want.Carrier || !got.SubmittedAt.Equal(want.SubmittedAt) ||
			len(got.Parts) != 2 || got.Parts[1].MessageID != "2" || got.Verified {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("ErrRequestNotFound", func(t *testing.T) {
		if _, err := db.Message(ctx, "nope"); !errors.Is(err, otp.ErrRequestNotFound) {
			t.Fatalf("got %v, want ErrRequestNotFound", err)
		}
		if err := db.MarkVerified(ctx, "nope"); !errors.Is(err, otp.ErrRequestNotFound) {
			t.Fatalf("MarkVerified: got %v, want ErrRequestNotFound", err)
		}
	})
	t.Run("MarkVerified", func(t *testing.T) {
		for range 2 {
			if err := db.MarkVerified(ctx, "r1"); err != nil {
				t.Fatalf("MarkVerified: %v", err)
			}
		}
		got, err := db.Message(ctx, "r1")
		if err != nil || !got.Verified {
			t.Fatalf("got %+v, %v; want Verified", got, err)
		}
	})
}

// TestDB_TTL checks the badger TTLs of messages and pending receipts: a
// clock set back further than the TTL stores them already expired.
func TestDB_TTL(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Now().Add(-2 * time.Hour))
	db := openDB(t, t.TempDir(), store.Options{Now: clk.now, MessageTTL: time.Hour, PendingReceiptTTL: time.Hour})

	saveSend(t, db, "k", message("old", "a", "1"), setRecord(clk.now().Add(3*time.Hour), 0))
	if _, err := db.Message(ctx, "old"); !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("expired message: got %v, want ErrRequestNotFound", err)
	}
	if _, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "1", State: otp.StateDelivered}); err != nil || matched {
		t.Fatalf("receipt for expired message: got matched %v, %v", matched, err)
	}
	clk.set(time.Now())
	m := saveSend(t, db, "k", message("new", "a", "1"), setRecord(clk.now().Add(time.Hour), 0))
	if m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("expired pending receipt applied: got %s, want ACCEPTED", m.Parts[0].State)
	}
	if _, err := db.Message(ctx, "new"); err != nil {
		t.Fatalf("Message: %v", err)
	}
}

func TestDB_Close(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !db.Healthy() {
		t.Fatal("Healthy = false on an open DB")
	}
	runErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	go func() { runErr <- db.Run(rctx) }()
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if db.Healthy() {
		t.Fatal("Healthy = true after Close")
	}
	if _, err := db.GetOTP(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("GetOTP after Close: got %v, want ErrClosed", err)
	}
	if _, err := db.SaveSend(ctx, "k", message("r", "a", "1"), nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("SaveSend after Close: got %v, want ErrClosed", err)
	}
}

func TestOpen_Errors(t *testing.T) {
	if _, err := store.Open("", store.Options{}); err == nil {
		t.Fatal("Open(\"\"): got nil error")
	}
	dir := t.TempDir()
	openDB(t, dir, store.Options{}) // holds the directory's lock
	if _, err := store.Open(dir, store.Options{}); err == nil {
		t.Fatal("second Open of a locked dir: got nil error")
	}
}

func TestDB_ApplyReceipt_Index(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)
	apply := func(t *testing.T, id, wantReq string) {
		t.Helper()
		m, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered})
		if err != nil || !matched {
			t.Fatalf("got matched %v, %v", matched, err)
		}
		if m.RequestID != wantReq {
			t.Fatalf("receipt %s: got %s, want %s", id, m.RequestID, wantReq)
		}
	}

	t.Run("ExactBeatsAlternate", func(t *testing.T) {
		saveSend(t, db, "k1", message("dec", "a", "26"), setRecord(keep, 0)) // alternate 1A
		saveSend(t, db, "k2", message("hex", "a", "1A"), setRecord(keep, 0)) // alternate 26
		apply(t, "1A", "hex")
		apply(t, "0026", "dec")
	})
	t.Run("ReusedIDGoesToNewest", func(t *testing.T) {
		// A carrier whose counter wrapped: the next receipt is the new message's.
		saveSend(t, db, "k3", message("first", "a", "500"), setRecord(keep, 0))
		saveSend(t, db, "k4", message("second", "a", "500"), setRecord(keep, 0))
		apply(t, "500", "second")
	})
}

// TestDB_ApplyReceipt_AlternateCollision: message X has hex id 1A2, whose
// decimal form is 418; message Y gets the exact id 418 later. Y's receipt,
// arriving before Y's SaveSend, must not be taken for X's once X has its
// own final state: it waits for Y.
func TestDB_ApplyReceipt_AlternateCollision(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)
	saveSend(t, db, "kx", message("x", "c", "1A2"), setRecord(keep, 0))
	if _, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "c", MessageID: "1A2", State: otp.StateDelivered}); err != nil || !matched || !changed {
		t.Fatalf("X's receipt: matched %v changed %v, %v", matched, changed, err)
	}
	// Y's receipt (another state) comes before Y's SaveSend.
	_, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "c", MessageID: "418", State: otp.StateUndeliverable, Error: "011"})
	if err != nil || matched {
		t.Fatalf("Y's early receipt: got matched %v (%v), want it kept pending", matched, err)
	}
	y := saveSend(t, db, "ky", message("y", "c", "418"), setRecord(keep, 0))
	if y.Parts[0].State != otp.StateUndeliverable {
		t.Fatalf("Y: got %s, want its pending UNDELIVERABLE", y.Parts[0].State)
	}
	x, err := db.Message(ctx, "x")
	if err != nil || x.Parts[0].State != otp.StateDelivered {
		t.Fatalf("X: got %+v (%v), want DELIVERED untouched", x.Parts, err)
	}
	// A decimal-writing carrier still matches X through the alternate form
	// while X waits for its receipt.
	saveSend(t, db, "kz", message("z", "d", "1A2"), setRecord(keep, 0))
	if m, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "d", MessageID: "418", State: otp.StateDelivered}); err != nil || !matched || m.RequestID != "z" {
		t.Fatalf("decimal receipt: got %q matched %v (%v), want z", m.RequestID, matched, err)
	}
}
