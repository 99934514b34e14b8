package smpp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/otpgate/otpgate/otp"
)

// recentIDs keys an id by its canonical form: every spelling IDForms
// takes for the same canonical form is the same id, and no other is.
func TestRecentIDs_Key(t *testing.T) {
	r := newRecentIDs()
	same := [][]string{
		{"0000000016", "16", " 16\x20", "00016"},
		{"00000001a3", "1A3", "1a3", "\t0001A3\n"},
		{"0", "0000", " 0 "},
		{"ÿ1a", "ÿ1A", " ÿ1a\u00a0"}, // non-ASCII: IDForms's own rules
		{"9" + string(make([]byte, 70)), "9" + string(make([]byte, 70))},
	}
	var keys []uint64
	for _, group := range same {
		c0, _ := otp.IDForms(group[0])
		k0, ok := r.key(group[0])
		if !ok {
			t.Fatalf("key(%q): not ok", group[0])
		}
		for _, id := range group[1:] {
			if c, _ := otp.IDForms(id); c != c0 {
				t.Fatalf("test data: %q and %q differ in IDForms (%q, %q)", group[0], id, c0, c)
			}
			if k, _ := r.key(id); k != k0 {
				t.Errorf("key(%q) != key(%q): the same canonical form %q", id, group[0], c0)
			}
		}
		keys = append(keys, k0)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[i] == keys[j] {
				t.Errorf("groups %q and %q share a key", same[i][0], same[j][0])
			}
		}
	}
	// Another base's spelling is another id: "16" is not "10" (hex of 16).
	if a, _ := r.key("16"); a == func() uint64 { k, _ := r.key("10"); return k }() {
		t.Error(`key("16") == key("10")`)
	}
	for _, id := range []string{"", "  ", "\t"} {
		if _, ok := r.key(id); ok {
			t.Errorf("key(%q): ok, want none for an empty id", id)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.key("00000001A3") }); n != 0 {
		t.Errorf("key of a 10-character id: %v allocations, want 0", n)
	}
}

// An id is remembered for one window at least and two at most; forget
// drops it at once; a nil set is empty and takes nothing.
func TestRecentIDs_Window(t *testing.T) {
	r := newRecentIDs()
	t0 := time.Unix(1_800_000_000, 0)
	r.add("0000000016", t0)
	if !r.has("16", t0.Add(recentIDWindow-time.Millisecond)) {
		t.Fatal("forgotten within its window")
	}
	// A new id after one window rotates: the first stays for one more.
	r.add("17", t0.Add(recentIDWindow))
	if !r.has("16", t0.Add(2*recentIDWindow-time.Millisecond)) || !r.has("17", t0.Add(2*recentIDWindow-time.Millisecond)) {
		t.Fatal("forgotten within two windows of being added")
	}
	if r.has("16", t0.Add(2*recentIDWindow)) {
		t.Fatal("16 kept past two windows")
	}
	if !r.has("17", t0.Add(2*recentIDWindow)) {
		t.Fatal("17 forgotten one window after being added")
	}
	if r.has("17", t0.Add(4*recentIDWindow)) {
		t.Fatal("17 kept past two windows with no add in between")
	}
	r.add("AB", t0.Add(5*recentIDWindow))
	r.forget("00ab")
	if r.has("AB", t0.Add(5*recentIDWindow)) {
		t.Fatal("kept after forget")
	}
	var none *recentIDs
	none.add("1", t0)
	none.forget("1")
	if none.has("1", t0) {
		t.Fatal("nil set has an id")
	}
}

// Over a session: a receipt of an id that a submit_sm_resp returned (read
// just before it) is marked Exact, in any spelling of its canonical form;
// its final receipt, once stored, lets the id go. A receipt of an id no
// submit returned, or of one whose submit was refused, is not marked, and
// a final receipt the handler failed to store keeps the id.
func TestSession_RecentIDsMarkReceipts(t *testing.T) {
	h := newReceipts()
	recent := newRecentIDs()
	s, p := startPeer(t, sessionConfig{Handler: h, Carrier: "c1", Recent: recent})
	submit := func(status uint32, id string) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
			done <- err
		}()
		_, seq, _ := p.readUntil(pdu.SubmitSMID)
		p.write(frame(uint32(pdu.SubmitSMRespID), status, seq, cstr(id)))
		recv(t, done, "the submit's result")
	}
	deliver := func(seq uint32, text string) otp.Receipt {
		t.Helper()
		p.write(frame(uint32(pdu.DeliverSMID), 0, seq, deliverBody(0x04, text)))
		p.readUntil(pdu.DeliverSMRespID)
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.got[len(h.got)-1]
	}
	// The receipt follows the response on the wire with no pause.
	done := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		done <- err
	}()
	_, seq, _ := p.readUntil(pdu.SubmitSMID)
	p.write(append(frame(uint32(pdu.SubmitSMRespID), 0, seq, cstr("0000000016")),
		frame(uint32(pdu.DeliverSMID), 0, 90, deliverBody(0x04, "id:16 stat:ENROUTE"))...))
	recv(t, done, "the submit's result")
	p.readUntil(pdu.DeliverSMRespID)
	h.mu.Lock()
	first := h.got[0]
	h.mu.Unlock()
	if !first.Exact || first.State.Final() {
		t.Fatalf("ENROUTE receipt right after its submit_sm_resp: got %+v, want Exact", first)
	}
	if r := deliver(91, "id:0000000016 stat:DELIVRD"); !r.Exact || r.State != otp.StateDelivered {
		t.Fatalf("DELIVRD receipt: got %+v, want Exact", r)
	}
	if recent.has("16", time.Now()) {
		t.Fatal("id still kept after its final receipt was stored")
	}
	if r := deliver(92, "id:10 stat:DELIVRD"); r.Exact {
		t.Fatalf("receipt of an id no submit returned: got %+v, want not Exact", r)
	}
	submit(0x58, "0000000020") // ESME_RTHROTTLED with an id: not an accepted message
	if r := deliver(93, "id:20 stat:DELIVRD"); r.Exact {
		t.Fatalf("receipt of a refused submit's id: got %+v, want not Exact", r)
	}
	submit(0, "0000000021")
	h.mu.Lock()
	h.err = errors.New("store down")
	h.mu.Unlock()
	if r := deliver(94, "id:21 stat:DELIVRD"); !r.Exact {
		t.Fatalf("receipt of 21: got %+v, want Exact", r)
	}
	if !recent.has("21", time.Now()) {
		t.Fatal("id forgotten though its final receipt was not stored")
	}
}

// BenchmarkRecentIDs is what one send and its final receipt cost the
// set: add (submit_sm_resp), has (receipt) and forget (receipt stored).
func BenchmarkRecentIDs(b *testing.B) {
	r := newRecentIDs()
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("%010X", i+1)
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[i&(len(ids)-1)]
		r.add(id, now)
		if !r.has(id, now) {
			b.Fatal("lost")
		}
		r.forget(id)
		i++
	}
}
