package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// receiptCases are the cases of otp.ReceiptStore.
var receiptCases = []testCase{
	{"Message_ErrRequestNotFound", testMessageNotFound},
	{"MarkVerified", testMarkVerified},
	{"ApplyReceipt_IDForms", testIDForms},
	{"ApplyReceipt_States", testStates},
	{"ApplyReceipt_EmptyID", testEmptyID},
	{"ApplyReceipt_ExactBeatsAlternate", testExactBeatsAlternate},
	{"ApplyReceipt_ReusedIDGoesToNewest", testReusedID},
	{"ApplyReceipt_AlternateCollision", testAlternateCollision},
	{"ApplyReceipt_ExactNoGuess", testExactNoGuess},
	{"Pending_AppliedBySaveSend", testPendingApplied},
	{"Pending_FinalNeverReplaced", testPendingFinal},
	{"Pending_PerCarrier", testPendingPerCarrier},
	{"Pending_RacesSaveSend", testPendingRace},
	{"RecordLateAck", testLateAck},
	{"RecordLateAck_Unchanged", testLateAckUnchanged},
	{"RecordRetry", testRetry},
	{"RecordRetry_PendingApplied", testRetryPending},
	{"RecordRetry_EarlierAttemptsReceipt", testRetryEarlierReceipt},
}

func testMessageNotFound(t *testing.T, e *env) {
	ctx := context.Background()
	e.send(t, Message("r1", "a", "1"))
	if _, err := e.b.Message(ctx, "r"); !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("Message: got %v, want ErrRequestNotFound", err)
	}
	// A store may mark an unknown id without reading it (badger does), or
	// refuse it; either way it has no message after.
	if err := e.b.MarkVerified(ctx, "nope"); err != nil && !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("MarkVerified: got %v, want nil or ErrRequestNotFound", err)
	}
	if m, err := e.b.Message(ctx, "nope"); !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("Message after MarkVerified of an unknown id: got %+v, %v, want ErrRequestNotFound", m, err)
	}
	if _, _, err := e.b.RecordLateAck(ctx, otp.Ack{RequestID: "nope", Carrier: "a", MessageID: "1", Parts: 1}); !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("RecordLateAck: got %v, want ErrRequestNotFound", err)
	}
	a := otp.Attempt{Carrier: "b", Parts: []otp.Part{{MessageID: "2", State: otp.StateAccepted}}, SubmittedAt: e.clk.now()}
	if _, err := e.b.RecordRetry(ctx, "nope", a); !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("RecordRetry: got %v, want ErrRequestNotFound", err)
	}
}

// testMarkVerified: MarkVerified sets Verified and nothing else, twice is
// once, and later receipts keep it.
func testMarkVerified(t *testing.T, e *env) {
	want := e.send(t, Message("r1", "a", "1", "2"))
	if m := e.message(t, "r1"); m.Verified {
		t.Fatalf("before MarkVerified: got Verified")
	}
	for range 2 {
		if err := e.b.MarkVerified(context.Background(), "r1"); err != nil {
			t.Fatalf("MarkVerified: %v", err)
		}
	}
	want.Verified = true
	sameMessage(t, e.message(t, "r1"), want)
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "1", State: otp.StateDelivered})
	if m := e.message(t, "r1"); !m.Verified || m.Parts[0].State != otp.StateDelivered {
		t.Fatalf("after a receipt: got %+v, want Verified and part 0 DELIVERED", m)
	}
}

// testIDForms: a receipt's id matches its message's whether the carrier
// writes it in hex or decimal, in either case, with leading zeros or not
// (otp.IDForms); only the message's carrier's receipts match.
func testIDForms(t *testing.T, e *env) {
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
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := fmt.Sprintf("c%d", i)
			reqID := "req-" + tt.name
			e.send(t, Message(reqID, carrier, "x", tt.submitted))
			rc := carrier
			if tt.carrier != "" {
				rc = tt.carrier
			}
			done := time.Unix(1_700_000_100, 0).UTC()
			m, matched, changed := e.apply(t, otp.Receipt{Carrier: rc, MessageID: tt.receipt,
				State: otp.StateDelivered, Error: "000", DoneAt: done})
			if matched != tt.matched || changed != tt.matched {
				t.Fatalf("got matched %v changed %v, want %v", matched, changed, tt.matched)
			}
			stored := e.message(t, reqID)
			want := Message(reqID, carrier, "x", tt.submitted)
			if tt.matched {
				want.Parts[1] = otp.Part{MessageID: tt.submitted, State: otp.StateDelivered, Error: "000", DoneAt: done}
				sameMessage(t, m, want)
			}
			sameMessage(t, stored, want)
		})
	}
}

// testStates: the first final state of a part decides; a receipt that
// repeats one applied, or comes after a final one, changes nothing and
// says so.
func testStates(t *testing.T, e *env) {
	e.send(t, Message("r1", "a", "100", "101"))
	steps := []struct {
		name    string
		id      string
		state   otp.State
		changed bool
		want    []otp.State
	}{
		{"Accepted", "100", otp.StateAccepted, false, []otp.State{otp.StateAccepted, otp.StateAccepted}},
		{"Delivered", "100", otp.StateDelivered, true, []otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"Repeated", "100", otp.StateDelivered, false, []otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"FinalKept", "100", otp.StateUndeliverable, false, []otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"NonFinalAfterFinal", "100", otp.StateAccepted, false, []otp.State{otp.StateDelivered, otp.StateAccepted}},
		{"OtherPart", "101", otp.StateExpired, true, []otp.State{otp.StateDelivered, otp.StateExpired}},
		{"OtherPartRepeated", "101", otp.StateExpired, false, []otp.State{otp.StateDelivered, otp.StateExpired}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := e.message(t, "r1")
			m, matched, changed := e.apply(t, otp.Receipt{Carrier: "a", MessageID: s.id, State: s.state,
				Error: "e-" + s.name, DoneAt: e.clk.now()})
			if !matched || changed != s.changed {
				t.Fatalf("got matched %v changed %v, want true, %v", matched, changed, s.changed)
			}
			stored := e.message(t, "r1")
			sameMessage(t, m, stored)
			if got := states(stored); !slices.Equal(got, s.want) {
				t.Fatalf("got states %v, want %v", got, s.want)
			}
			if !changed {
				sameMessage(t, stored, before)
			}
			e.clk.add(time.Second)
		})
	}
}

// testEmptyID: a receipt without an id matches nothing and is not kept
// for a message whose part has no id either.
func testEmptyID(t *testing.T, e *env) {
	for _, id := range []string{"", " "} {
		if _, matched, changed := e.apply(t, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered}); matched || changed {
			t.Fatalf("id %q: got matched %v changed %v", id, matched, changed)
		}
	}
	if m := e.send(t, Message("r1", "a", "")); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("got %s, want ACCEPTED", m.Parts[0].State)
	}
}

// applyTo fails tb unless a DELIVERED receipt of id from carrier a
// matches the message wantReq.
func applyTo(tb testing.TB, e *env, id, wantReq string) {
	tb.Helper()
	m, matched, _ := e.apply(tb, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered})
	if !matched || m.RequestID != wantReq {
		tb.Fatalf("receipt %s: got %q (matched %v), want %s", id, m.RequestID, matched, wantReq)
	}
}

// testExactBeatsAlternate: 26 (decimal) and 1A (hex) are the same value;
// with a message of each, each receipt goes to the message whose id it
// spells.
func testExactBeatsAlternate(t *testing.T, e *env) {
	e.send(t, Message("dec", "a", "26"))
	e.send(t, Message("hex", "a", "1A"))
	applyTo(t, e, "1A", "hex")
	applyTo(t, e, "0026", "dec")
}

// testReusedID: a carrier whose id counter wrapped sends the next receipt
// of an id for the newest message that has it.
func testReusedID(t *testing.T, e *env) {
	e.send(t, Message("first", "a", "500"))
	e.send(t, Message("second", "a", "500"))
	applyTo(t, e, "500", "second")
	if m := e.message(t, "first"); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("first: got %s, want ACCEPTED", m.Parts[0].State)
	}
	// The same id, reused once more, with a receipt already waiting for it.
	e.send(t, Message("third", "a", "500"))
	applyTo(t, e, "500", "third")
}

// testAlternateCollision: message x has hex id 1A2, whose decimal form is
// 418; message y gets the exact id 418 later. y's receipt, arriving before
// y's SaveSend, must not be taken for x's once x has its own final state:
// it waits for y.
func testAlternateCollision(t *testing.T, e *env) {
	e.send(t, Message("x", "c", "1A2"))
	if _, matched, changed := e.apply(t, otp.Receipt{Carrier: "c", MessageID: "1A2", State: otp.StateDelivered}); !matched || !changed {
		t.Fatalf("x's receipt: matched %v changed %v", matched, changed)
	}
	e.pending(t, otp.Receipt{Carrier: "c", MessageID: "418", State: otp.StateUndeliverable, Error: "011"})
	if y := e.send(t, Message("y", "c", "418")); y.Parts[0].State != otp.StateUndeliverable {
		t.Fatalf("y: got %s, want its pending UNDELIVERABLE", y.Parts[0].State)
	}
	if x := e.message(t, "x"); x.Parts[0].State != otp.StateDelivered {
		t.Fatalf("x: got %+v, want DELIVERED untouched", x.Parts)
	}
	// The same with the same state: w (exact id 418 of carrier e) gets its
	// DELIVRD receipt before its SaveSend, while v (1A2, alternate 418)
	// already has its own DELIVRD.
	e.send(t, Message("v", "e", "1A2"))
	e.apply(t, otp.Receipt{Carrier: "e", MessageID: "1A2", State: otp.StateDelivered})
	e.pending(t, otp.Receipt{Carrier: "e", MessageID: "418", State: otp.StateDelivered})
	if w := e.send(t, Message("w", "e", "418")); w.Parts[0].State != otp.StateDelivered {
		t.Fatalf("w: got %s, want its pending DELIVERED", w.Parts[0].State)
	}
	// A decimal-writing carrier still matches through the alternate form
	// while its message waits for its receipt.
	e.send(t, Message("z", "d", "1A2"))
	if m, matched, _ := e.apply(t, otp.Receipt{Carrier: "d", MessageID: "418", State: otp.StateDelivered}); !matched || m.RequestID != "z" {
		t.Fatalf("decimal receipt: got %q matched %v, want z", m.RequestID, matched)
	}
}

// testExactNoGuess: hex ids 10 and 16 spell each other in the other base
// (0x10 is 16; 16 is 0x10). A receipt marked Exact (its id was just
// returned to a submit) that comes before its message's SaveSend is not
// guessed onto the older message it spells in the other base, even though
// that one still waits for its receipt: it is kept for its own message.
// Nor does an older message whose alternate form it spells take it from
// pending.
func testExactNoGuess(t *testing.T, e *env) {
	e.send(t, Message("old", "x1", "10"))
	e.pending(t, otp.Receipt{Carrier: "x1", MessageID: "16", State: otp.StateUndeliverable, Exact: true})
	if m := e.message(t, "old"); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("old (10): got %s, want ACCEPTED: 16's receipt was guessed onto it", m.Parts[0].State)
	}
	if m := e.send(t, Message("new", "x1", "16")); m.Parts[0].State != otp.StateUndeliverable {
		t.Fatalf("new (16): got %s, want its pending UNDELIVERABLE", m.Parts[0].State)
	}
	if m, matched, _ := e.apply(t, otp.Receipt{Carrier: "x1", MessageID: "0000000010", State: otp.StateDelivered, Exact: true}); !matched || m.RequestID != "old" {
		t.Fatalf("old's own receipt: got %q (matched %v), want old", m.RequestID, matched)
	}

	// Kept pending with no message at all; the message whose alternate
	// form it spells is saved first.
	e.pending(t, otp.Receipt{Carrier: "x2", MessageID: "0000000016", State: otp.StateUndeliverable, Exact: true})
	if m := e.send(t, Message("old2", "x2", "10")); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("old2 (10): got %s, want ACCEPTED: it took 16's pending receipt", m.Parts[0].State)
	}
	if m := e.send(t, Message("new2", "x2", "16")); m.Parts[0].State != otp.StateUndeliverable {
		t.Fatalf("new2 (16): got %s, want its pending UNDELIVERABLE", m.Parts[0].State)
	}

	// Kept pending unmarked first (before its submit's answer, say), then
	// sent again marked: what waits is marked too.
	e.pending(t, otp.Receipt{Carrier: "x3", MessageID: "16", State: otp.StateUndeliverable})
	e.pending(t, otp.Receipt{Carrier: "x3", MessageID: "16", State: otp.StateUndeliverable, Exact: true})
	if m := e.send(t, Message("old3", "x3", "10")); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("old3 (10): got %s, want ACCEPTED: it took 16's pending receipt", m.Parts[0].State)
	}
	if m := e.send(t, Message("new3", "x3", "16")); m.Parts[0].State != otp.StateUndeliverable {
		t.Fatalf("new3 (16): got %s, want its pending UNDELIVERABLE", m.Parts[0].State)
	}
}

// testPendingApplied: a receipt that comes before its message's SaveSend
// (the carrier was faster than its submit_sm_resp) is kept, then applied
// by the SaveSend, in any of the id's forms, and used up.
func testPendingApplied(t *testing.T, e *env) {
	tests := []struct {
		name, receipt, submitted string
	}{
		{"Exact", "777", "777"},
		{"LeadingZeros", "000777", "777"},
		{"HexReceipt", "1A", "26"},
		{"DecimalReceipt", "26", "1A"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := fmt.Sprintf("c%d", i)
			done := time.Unix(1_700_000_200, 0).UTC()
			e.pending(t, otp.Receipt{Carrier: carrier, MessageID: tt.receipt, State: otp.StateUndeliverable, Error: "001", DoneAt: done})
			msg := Message("r-"+tt.name, carrier, tt.submitted)
			m := e.send(t, msg)
			msg.Parts[0] = otp.Part{MessageID: tt.submitted, State: otp.StateUndeliverable, Error: "001", DoneAt: done}
			sameMessage(t, m, msg)
			sameMessage(t, e.message(t, msg.RequestID), msg)
			// Used up: another message of that id (a carrier reusing
			// ids) does not get it.
			if m := e.send(t, Message("s-"+tt.name, carrier, tt.submitted)); m.Parts[0].State != otp.StateAccepted {
				t.Fatalf("second message: got %s, want ACCEPTED", m.Parts[0].State)
			}
		})
	}
}

// testPendingFinal: receipts that come before their message follow the
// rule of those that find it: the first final state decides.
func testPendingFinal(t *testing.T, e *env) {
	tests := []struct {
		name   string
		states []otp.State
		want   otp.State
	}{
		{"DeliveredThenUndeliverable", []otp.State{otp.StateDelivered, otp.StateUndeliverable}, otp.StateDelivered},
		{"DeliveredThenAccepted", []otp.State{otp.StateDelivered, otp.StateAccepted}, otp.StateDelivered},
		{"AcceptedThenDelivered", []otp.State{otp.StateAccepted, otp.StateDelivered}, otp.StateDelivered},
		{"ExpiredThenDelivered", []otp.State{otp.StateExpired, otp.StateDelivered}, otp.StateExpired},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint(500 + i)
			for _, st := range tt.states {
				e.pending(t, otp.Receipt{Carrier: "a", MessageID: id, State: st})
			}
			if got := e.send(t, Message("r"+id, "a", id)).Parts[0].State; got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// testPendingPerCarrier: a waiting receipt is its carrier's: a message of
// another carrier with the same id does not take it.
func testPendingPerCarrier(t *testing.T, e *env) {
	e.pending(t, otp.Receipt{Carrier: "b", MessageID: "777", State: otp.StateDelivered})
	if m := e.send(t, Message("ra", "a", "777")); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("carrier a: got %s, want ACCEPTED", m.Parts[0].State)
	}
	if m := e.send(t, Message("rb", "b", "777")); m.Parts[0].State != otp.StateDelivered {
		t.Fatalf("carrier b: got %s, want DELIVERED", m.Parts[0].State)
	}
}

// testPendingRace runs receipts concurrently with the SaveSend of their
// messages, many at once: whichever commits first, each receipt ends up
// applied.
func testPendingRace(t *testing.T, e *env) {
	ctx := context.Background()
	keep := e.clk.now().Add(time.Hour)
	const pairs = 20
	for round := range 10 {
		id := func(i int) string { return fmt.Sprint(5000 + round*pairs + i) }
		parallel(2*pairs, func(i int) {
			if i%2 == 0 {
				if _, err := e.b.SaveSend(ctx, "k"+id(i/2), Message("r"+id(i/2), "a", id(i/2)), SetRecord(keep, 0)); err != nil {
					t.Errorf("SaveSend: %v", err)
				}
				return
			}
			if _, _, _, err := e.b.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: id(i / 2), State: otp.StateDelivered}); err != nil {
				t.Errorf("ApplyReceipt: %v", err)
			}
		})
		for i := range pairs {
			if got := e.message(t, "r"+id(i)).Parts[0].State; got != otp.StateDelivered {
				t.Fatalf("%s: got %s, want DELIVERED", id(i), got)
			}
		}
	}
}

// testLateAck: a send whose outcome was unknown is stored without carrier
// or parts; the acks that come later give it both, apply the receipts
// that came before them and index the ids for those that come after.
func testLateAck(t *testing.T, e *env) {
	ctx := context.Background()
	e.send(t, Message("r1", "")) // no carrier, no parts
	e.pending(t, otp.Receipt{Carrier: "a", MessageID: "B2", State: otp.StateDelivered, Error: "000"})
	var got otp.Message
	for i, id := range []string{"A1", "B2"} {
		m, changed, err := e.b.RecordLateAck(ctx, otp.Ack{RequestID: "r1", Carrier: "a", MessageID: id, Part: i, Parts: 2})
		if err != nil {
			t.Fatalf("RecordLateAck %s: %v", id, err)
		}
		if changed {
			t.Fatalf("RecordLateAck %s: changed, want the message still ACCEPTED (part 0 in flight)", id)
		}
		got = m
	}
	m := e.message(t, "r1")
	want := Message("r1", "a", "A1", "B2")
	want.Parts[1].State, want.Parts[1].Error = otp.StateDelivered, "000"
	sameMessage(t, m, want)
	sameMessage(t, got, want) // as it returned it
	if cbs := e.dueNow(t); len(cbs) != 0 {
		t.Fatalf("got %d callbacks while part 1 is in flight, want 0", len(cbs))
	}
	if _, matched, changed := e.apply(t, otp.Receipt{Carrier: "a", MessageID: "a1", State: otp.StateDelivered}); !matched || !changed {
		t.Fatalf("receipt after the late ack: matched %v changed %v", matched, changed)
	}
	if cbs := e.dueNow(t); len(cbs) != 1 || cbs[0].State != otp.StateDelivered {
		t.Fatalf("got callbacks %+v, want one DELIVERED", cbs)
	}

	// A single part whose failure came first: the late ack queues its
	// callback.
	e.send(t, Message("r2", ""))
	e.pending(t, otp.Receipt{Carrier: "a", MessageID: "C1", State: otp.StateUndeliverable, Error: "011"})
	m2, changed, err := e.b.RecordLateAck(ctx, otp.Ack{RequestID: "r2", Carrier: "a", MessageID: "C1", Parts: 1})
	if err != nil {
		t.Fatalf("RecordLateAck: %v", err)
	}
	if st, _, _ := m2.Summary(); !changed || st != otp.StateUndeliverable || m2.RequestID != "r2" {
		t.Fatalf("RecordLateAck: got %s %+v changed %v, want r2 UNDELIVERABLE and changed", st, m2, changed)
	}
	var cbs []otp.Callback
	for _, cb := range e.dueNow(t) {
		if cb.RequestID == "r2" {
			cbs = append(cbs, cb)
		}
	}
	if len(cbs) != 1 {
		t.Fatalf("got %d callbacks of r2, want 1", len(cbs))
	}
	sameCallback(t, cbs[0], otp.NewCallback(e.message(t, "r2"), cbs[0].ID, e.clk.now()))

	// The first part's failure decides the message: the late ack of the
	// second part, which leaves the state as it was, queues nothing more.
	e.done(t, e.dueNow(t)...)
	e.send(t, Message("r3", ""))
	e.pending(t, otp.Receipt{Carrier: "a", MessageID: "D1", State: otp.StateRejected})
	for i, id := range []string{"D1", "D2"} {
		_, changed, err := e.b.RecordLateAck(ctx, otp.Ack{RequestID: "r3", Carrier: "a", MessageID: id, Part: i, Parts: 2})
		if err != nil {
			t.Fatalf("RecordLateAck %s: %v", id, err)
		}
		if changed != (i == 0) {
			t.Fatalf("RecordLateAck %s: changed %v, want %v (only the first part's failure changes the state)", id, changed, i == 0)
		}
	}
	if cb := only(t, e.dueNow(t)); cb.RequestID != "r3" || cb.State != otp.StateRejected {
		t.Fatalf("got %+v, want one REJECTED callback of r3", cb)
	}
}

// testLateAckUnchanged: a late ack of a copy sent through another carrier
// before a failover, or of a part that has its id, changes nothing; one
// of a part that does not exist is an error.
func testLateAckUnchanged(t *testing.T, e *env) {
	ctx := context.Background()
	want := e.send(t, Message("r1", "b", "B-1"))
	for _, a := range []otp.Ack{
		{RequestID: "r1", Carrier: "a", MessageID: "X", Parts: 1},
		{RequestID: "r1", Carrier: "b", MessageID: "X", Parts: 1},
	} {
		m, changed, err := e.b.RecordLateAck(ctx, a)
		if err != nil {
			t.Fatalf("RecordLateAck %+v: %v", a, err)
		}
		if changed {
			t.Fatalf("RecordLateAck %+v: changed", a)
		}
		sameMessage(t, m, want)
		sameMessage(t, e.message(t, "r1"), want)
	}
	if _, matched, _ := e.apply(t, otp.Receipt{Carrier: "a", MessageID: "X", State: otp.StateDelivered}); matched {
		t.Fatal("a receipt of the ignored ack's id matched")
	}
	e.send(t, Message("r2", ""))
	for _, a := range []otp.Ack{
		{RequestID: "r2", Carrier: "a", MessageID: "X", Part: 2, Parts: 2},
		{RequestID: "r2", Carrier: "a", MessageID: "X", Part: -1, Parts: 2},
		{RequestID: "r2", Carrier: "a", MessageID: "", Part: 0, Parts: 1},
	} {
		if _, _, err := e.b.RecordLateAck(ctx, a); err == nil {
			t.Fatalf("RecordLateAck %+v: got nil error", a)
		}
	}
}

// testRetry: RecordRetry makes the attempt current and keeps the one it
// replaces in Earlier; receipts of the new attempt's ids match.
func testRetry(t *testing.T, e *env) {
	ctx := context.Background()
	first := e.send(t, Message("r1", "a", "A1"))
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateUndeliverable, Error: "011"})
	e.done(t, e.dueNow(t)...)
	failed := e.message(t, "r1")

	e.clk.add(time.Second)
	a := otp.Attempt{Carrier: "b", Parts: []otp.Part{{MessageID: "B1", State: otp.StateAccepted}}, SubmittedAt: e.clk.now()}
	m, err := e.b.RecordRetry(ctx, "r1", a)
	if err != nil {
		t.Fatalf("RecordRetry: %v", err)
	}
	want := first
	want.Carrier, want.Parts, want.SubmittedAt = "b", a.Parts, a.SubmittedAt
	want.Earlier = []otp.Attempt{{Carrier: "a", Parts: failed.Parts, SubmittedAt: first.SubmittedAt}}
	sameMessage(t, m, want)
	sameMessage(t, e.message(t, "r1"), want)
	if cbs := e.dueNow(t); len(cbs) != 0 {
		t.Fatalf("got %d callbacks for a retry in flight, want 0", len(cbs))
	}

	m, matched, changed := e.apply(t, otp.Receipt{Carrier: "b", MessageID: "B1", State: otp.StateDelivered, Error: "000"})
	if !matched || !changed || m.RequestID != "r1" {
		t.Fatalf("receipt of the retry: got %q matched %v changed %v", m.RequestID, matched, changed)
	}
	cbs := e.dueNow(t)
	if len(cbs) != 1 {
		t.Fatalf("got %d callbacks, want 1", len(cbs))
	}
	sameCallback(t, cbs[0], otp.NewCallback(e.message(t, "r1"), cbs[0].ID, e.clk.now()))
	if len(cbs[0].History) != 2 {
		t.Fatalf("callback history %+v, want both attempts", cbs[0].History)
	}
}

// testRetryPending: a receipt of the retry that came before RecordRetry
// is applied by it, and the callback queued in the same change.
func testRetryPending(t *testing.T, e *env) {
	e.send(t, Message("r1", "a", "A1"))
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateExpired})
	e.done(t, e.dueNow(t)...)
	e.pending(t, otp.Receipt{Carrier: "b", MessageID: "00B1", State: otp.StateDelivered, Error: "000"})
	a := otp.Attempt{Carrier: "b", Parts: []otp.Part{{MessageID: "B1", State: otp.StateAccepted}}, SubmittedAt: e.clk.now()}
	m, err := e.b.RecordRetry(context.Background(), "r1", a)
	if err != nil {
		t.Fatalf("RecordRetry: %v", err)
	}
	if m.Parts[0].State != otp.StateDelivered || len(m.Earlier) != 1 || m.Earlier[0].Parts[0].State != otp.StateExpired {
		t.Fatalf("got %+v, want the retry DELIVERED and the first attempt EXPIRED", m)
	}
	sameMessage(t, e.message(t, "r1"), m)
	cbs := e.dueNow(t)
	if len(cbs) != 1 {
		t.Fatalf("got %d callbacks, want 1", len(cbs))
	}
	sameCallback(t, cbs[0], otp.NewCallback(m, cbs[0].ID, e.clk.now()))
}

// testRetryEarlierReceipt: a carrier repeating the receipt of the attempt
// that a retry replaced (its deliver_sm_resp was lost, say) changes
// nothing: the current attempt is another carrier's.
func testRetryEarlierReceipt(t *testing.T, e *env) {
	e.send(t, Message("r1", "a", "A1"))
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateUndeliverable, Error: "011"})
	e.done(t, e.dueNow(t)...)
	a := otp.Attempt{Carrier: "b", Parts: []otp.Part{{MessageID: "B1", State: otp.StateAccepted}}, SubmittedAt: e.clk.now()}
	want, err := e.b.RecordRetry(context.Background(), "r1", a)
	if err != nil {
		t.Fatalf("RecordRetry: %v", err)
	}
	for _, st := range []otp.State{otp.StateUndeliverable, otp.StateDelivered} {
		if _, _, changed := e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: st, Error: "011"}); changed {
			t.Errorf("%s receipt of the earlier attempt: changed true", st)
		}
	}
	sameMessage(t, e.message(t, "r1"), want)
	if got := e.dueNow(t); len(got) != 0 {
		t.Fatalf("got callbacks %+v, want none", got)
	}
	// The retry's own receipt still decides.
	if _, matched, changed := e.apply(t, otp.Receipt{Carrier: "b", MessageID: "B1", State: otp.StateDelivered}); !matched || !changed {
		t.Fatalf("the retry's receipt: matched %v changed %v", matched, changed)
	}
}
