package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// callbackCases are the cases of otp.CallbackQueue and otp.MOQueue, and of
// the callbacks a ReceiptStore queues: each change of a message's delivery
// state to one that is not ACCEPTED queues otp.NewCallback of the message
// as stored, at Options.Now, in the same change.
var callbackCases = []testCase{
	{"Enqueue_ByReceipt", testEnqueue},
	{"Enqueue_BySaveSend", testEnqueueBySaveSend},
	{"Enqueue_MultiPart", testEnqueueMultiPart},
	{"Enqueue_WantsCallback", testWantsCallback},
	{"Due_PerClient", testDuePerClient},
	{"Due_NotYetDue", testNotYetDue},
	{"Reschedule", testReschedule},
	{"Reschedule_Gone", testRescheduleGone},
	{"Done", testDone},
	{"QueueCallback_MO", testQueueMO},
}

// sameCallback fails tb unless got and want are equal, times compared with
// Equal.
func sameCallback(tb testing.TB, got, want otp.Callback) {
	tb.Helper()
	if !reflect.DeepEqual(normCallback(got), normCallback(want)) {
		tb.Fatalf("got %+v,\nwant %+v", got, want)
	}
}

func normCallback(cb otp.Callback) otp.Callback {
	cb.DoneAt, cb.FirstAt, cb.Due = cb.DoneAt.UTC().Round(0), cb.FirstAt.UTC().Round(0), cb.Due.UTC().Round(0)
	if len(cb.History) == 0 {
		cb.History = nil
	}
	return cb
}

// only fails tb unless cbs is one callback, and returns it.
func only(tb testing.TB, cbs []otp.Callback) otp.Callback {
	tb.Helper()
	if len(cbs) != 1 {
		tb.Fatalf("got %d callbacks %+v, want 1", len(cbs), cbs)
	}
	return cbs[0]
}

// testEnqueue: a receipt that changes a message's state queues the
// message's callback; repeats and non-final states after it queue nothing.
func testEnqueue(t *testing.T, e *env) {
	e.send(t, Message("r1", "a", "A1"))
	if got := e.dueNow(t); len(got) != 0 {
		t.Fatalf("got %d callbacks after a send, want 0", len(got))
	}
	done := e.clk.now().Add(-time.Minute)
	e.clk.add(time.Second)
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "a1", State: otp.StateDelivered, Error: "000", DoneAt: done})
	cb := only(t, e.dueNow(t))
	if cb.ID == "" {
		t.Fatal("callback without an id")
	}
	sameCallback(t, cb, otp.NewCallback(e.message(t, "r1"), cb.ID, e.clk.now()))
	e.clk.add(time.Second)
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateDelivered, DoneAt: done})
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateAccepted, DoneAt: done})
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateUndeliverable, DoneAt: done})
	sameCallback(t, only(t, e.dueNow(t)), cb)
}

// testEnqueueBySaveSend: a receipt waiting for its message queues nothing;
// the SaveSend that applies it queues the callback.
func testEnqueueBySaveSend(t *testing.T, e *env) {
	done := e.clk.now().Add(-time.Minute)
	e.pending(t, otp.Receipt{Carrier: "a", MessageID: "00B2", State: otp.StateUndeliverable, Error: "001", DoneAt: done})
	if got := e.dueNow(t); len(got) != 0 {
		t.Fatalf("got %d callbacks for a pending receipt, want 0", len(got))
	}
	e.clk.add(time.Second)
	m := e.send(t, Message("r2", "a", "B2"))
	cb := only(t, e.dueNow(t))
	sameCallback(t, cb, otp.NewCallback(m, cb.ID, e.clk.now()))
	if cb.State != otp.StateUndeliverable || cb.Error != "001" || !cb.DoneAt.Equal(done) {
		t.Fatalf("got %+v, want the receipt's state, error and time", cb)
	}
}

// testEnqueueMultiPart: a receipt that leaves a message in flight tells
// the client nothing; the one that decides it does.
func testEnqueueMultiPart(t *testing.T, e *env) {
	e.send(t, Message("r3", "a", "C1", "C2", "C3"))
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "C1", State: otp.StateDelivered, Error: "000"})
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "C3", State: otp.StateDelivered, Error: "000"})
	if got := e.dueNow(t); len(got) != 0 {
		t.Fatalf("got %+v with a part in flight, want none", got)
	}
	e.apply(t, otp.Receipt{Carrier: "a", MessageID: "C2", State: otp.StateDelivered, Error: "000"})
	if cb := only(t, e.dueNow(t)); cb.State != otp.StateDelivered {
		t.Fatalf("got %+v after every part, want DELIVERED", cb)
	}
}

// testWantsCallback: the messages of a client that has no callback URL
// queue no callback, whichever write changes their state.
func testWantsCallback(t *testing.T, e *env) {
	b := e.openBackend(t, func(o *Options) {
		o.WantsCallback = func(clientID string) bool { return clientID != "quiet" }
	})
	e = &env{b: b, clk: e.clk, open: e.open}
	for _, client := range []string{"quiet", "loud"} {
		m := Message(client+"1", "a", client+"-1")
		m.ClientID = client
		e.send(t, m)
		e.apply(t, otp.Receipt{Carrier: "a", MessageID: client + "-1", State: otp.StateDelivered})
		e.pending(t, otp.Receipt{Carrier: "a", MessageID: client + "-2", State: otp.StateDelivered})
		m = Message(client+"2", "a", client+"-2")
		m.ClientID = client
		e.send(t, m)
	}
	var got []string
	for _, cb := range e.dueNow(t) {
		got = append(got, cb.RequestID)
	}
	slices.Sort(got)
	if want := []string{"loud1", "loud2"}; !slices.Equal(got, want) {
		t.Fatalf("got callbacks of %v, want %v", got, want)
	}
}

// queue queues n callbacks of client, one receipt each, the clock moving
// a millisecond after each, and returns them in the order queued.
func queue(tb testing.TB, e *env, client string, n int) []otp.Callback {
	tb.Helper()
	var out []otp.Callback
	for i := range n {
		id := fmt.Sprintf("%s-%d", client, i)
		m := Message(id, "a", id)
		m.ClientID = client
		e.send(tb, m)
		e.apply(tb, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered, Error: "000"})
		for _, cb := range e.dueNow(tb) {
			if cb.RequestID == id {
				out = append(out, cb)
			}
		}
		e.clk.add(time.Millisecond)
	}
	if len(out) != n {
		tb.Fatalf("queued %d callbacks of %s, found %d", n, client, len(out))
	}
	return out
}

// testDuePerClient: DueCallbacks gives each client at most perClient
// callbacks, its earliest: a client with a backlog does not hide the
// others. Client ids that are prefixes of one another stay apart.
func testDuePerClient(t *testing.T, e *env) {
	a := queue(t, e, "a", 20)
	ab := queue(t, e, "ab", 1)
	b := queue(t, e, "b", 3)
	got := map[string][]string{}
	for _, cb := range e.due(t, e.clk.now(), 2) {
		got[cb.ClientID] = append(got[cb.ClientID], cb.ID)
	}
	want := map[string][]string{"a": {a[0].ID, a[1].ID}, "ab": {ab[0].ID}, "b": {b[0].ID, b[1].ID}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if n := len(e.due(t, e.clk.now(), 100)); n != 24 {
		t.Fatalf("got %d with room for all, want 24", n)
	}
}

// testNotYetDue: a callback is due from its Due time on, not before.
func testNotYetDue(t *testing.T, e *env) {
	t0 := e.clk.now()
	queue(t, e, "a", 2)
	e.clk.add(time.Second)
	t1 := e.clk.now()
	queue(t, e, "b", 1)
	for _, tt := range []struct {
		name string
		at   time.Time
		want int
	}{
		{"BeforeAll", t0.Add(-time.Nanosecond), 0},
		{"AtFirst", t0, 1},
		{"BeforeB", t1.Add(-time.Nanosecond), 2},
		{"AtB", t1, 3},
	} {
		if got := len(e.due(t, tt.at, 100)); got != tt.want {
			t.Errorf("%s: got %d due, want %d", tt.name, got, tt.want)
		}
	}
}

// testReschedule: a rescheduled callback keeps its content, takes the
// attempts given and is due at its new time, not before; the client's
// other callbacks come first meanwhile.
func testReschedule(t *testing.T, e *env) {
	ctx := context.Background()
	cbs := queue(t, e, "a", 2)
	cb := cbs[0]
	cb.Attempts = 1
	next := e.clk.now().Add(5 * time.Second)
	if err := e.b.RescheduleCallback(ctx, cb, next); err != nil {
		t.Fatalf("RescheduleCallback: %v", err)
	}
	if got := only(t, e.due(t, e.clk.now(), 100)); got.ID != cbs[1].ID {
		t.Fatalf("got %+v due now, want only the other callback", got)
	}
	got := e.due(t, next, 100)
	if len(got) != 2 || got[0].ID != cbs[1].ID {
		t.Fatalf("got %+v at the new time, want the other callback first, then the rescheduled one", got)
	}
	want := cb
	want.Due = next
	sameCallback(t, got[1], want)
	// And again, from the rescheduled record.
	next2 := next.Add(10 * time.Second)
	got[1].Attempts = 2
	if err := e.b.RescheduleCallback(ctx, got[1], next2); err != nil {
		t.Fatalf("RescheduleCallback: %v", err)
	}
	want.Attempts, want.Due = 2, next2
	var found []otp.Callback
	for _, c := range e.due(t, next2, 100) {
		if c.ID == cb.ID {
			found = append(found, c)
		}
	}
	sameCallback(t, only(t, found), want)
}

// testRescheduleGone: a reschedule of a callback no longer queued at its
// Due (delivered, dropped, or rescheduled by another try) writes nothing.
func testRescheduleGone(t *testing.T, e *env) {
	ctx := context.Background()
	cbs := queue(t, e, "a", 2)
	later := e.clk.now().Add(time.Hour)
	e.done(t, cbs[0])
	if err := e.b.RescheduleCallback(ctx, cbs[0], e.clk.now().Add(time.Second)); err != nil {
		t.Fatalf("RescheduleCallback of a callback done: %v", err)
	}
	for i, next := range []time.Time{e.clk.now().Add(time.Second), e.clk.now().Add(2 * time.Second)} {
		stale := cbs[1] // the same record twice: the second is stale
		stale.Attempts = i + 1
		if err := e.b.RescheduleCallback(ctx, stale, next); err != nil {
			t.Fatalf("RescheduleCallback %d: %v", i, err)
		}
	}
	got := only(t, e.due(t, later, 100))
	want := cbs[1]
	want.Attempts, want.Due = 1, e.clk.now().Add(time.Second)
	sameCallback(t, got, want)
}

// testDone: CallbackDone removes the callbacks given, at once, and
// ignores those no longer queued.
func testDone(t *testing.T, e *env) {
	cbs := queue(t, e, "a", 3)
	other := queue(t, e, "b", 1)
	e.done(t)
	e.done(t, cbs[0], cbs[2], other[0])
	if got := only(t, e.dueNow(t)); got.ID != cbs[1].ID {
		t.Fatalf("got %+v left, want %s", got, cbs[1].ID)
	}
	e.done(t, cbs[0], cbs[1])
	if got := e.dueNow(t); len(got) != 0 {
		t.Fatalf("got %+v left, want none", got)
	}
}

// testQueueMO: an MO callback queued as it is comes back as it was, due at
// its Due.
func testQueueMO(t *testing.T, e *env) {
	now := e.clk.now()
	cb := otp.Callback{ID: "mo1", Kind: otp.CallbackMO, ClientID: "c1", Carrier: "a", From: "+919876543210",
		To: "OTPGATE", Text: "STOP ✓", DoneAt: now.Add(-time.Second), FirstAt: now, Due: now.Add(time.Minute)}
	if err := e.b.QueueCallback(context.Background(), cb); err != nil {
		t.Fatalf("QueueCallback: %v", err)
	}
	if got := e.dueNow(t); len(got) != 0 {
		t.Fatalf("got %+v before its Due, want none", got)
	}
	sameCallback(t, only(t, e.due(t, cb.Due, 10)), cb)
}
