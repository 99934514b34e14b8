package smpp

import (
	"context"
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

// An id is remembered for one window at least and two at most; a nil set
// is empty and takes nothing.
func TestRecentIDs_Window(t *testing.T) {
	r := newRecentIDs()
	t0 := time.Unix(1_800_000_000, 0)
	r.add("0000000016", t0)
	if !r.exact("16", t0.Add(recentIDWindow-time.Millisecond)) {
		t.Fatal("forgotten within its window")
	}
	// A new id after one window rotates: the first stays for one more.
	r.add("17", t0.Add(recentIDWindow))
	if !r.exact("16", t0.Add(2*recentIDWindow-time.Millisecond)) || !r.exact("17", t0.Add(2*recentIDWindow-time.Millisecond)) {
		t.Fatal("forgotten within two windows of being added")
	}
	if r.exact("16", t0.Add(2*recentIDWindow)) {
		t.Fatal("16 kept past two windows")
	}
	if !r.exact("17", t0.Add(2*recentIDWindow)) {
		t.Fatal("17 forgotten one window after being added")
	}
	if r.exact("17", t0.Add(4*recentIDWindow)) {
		t.Fatal("17 kept past two windows with no add in between")
	}
	var none *recentIDs
	none.add("1", t0)
	if none.exact("1", t0) {
		t.Fatal("nil set has an id")
	}
}

// A receipt id that spells one recent id in the submits' base and another
// in the other base is marked only for a carrier whose unambiguous
// receipts were mostly in the submits' base: a carrier writing decimal
// receipts for hex ids gets no wrong marks.
func TestRecentIDs_Base(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	hex := func(n int) string { return fmt.Sprintf("%010X", n) }
	// Ids 0x1000..0x1040: their decimal spellings (4096...) are, read as
	// hex, far beyond: a receipt is unambiguous in either base.
	for _, tt := range []struct {
		name    string
		receipt func(n int) string
		want    bool
	}{
		{"SameBase", hex, true},
		{"OtherBase", func(n int) string { return fmt.Sprint(n) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecentIDs()
			for n := 0x1000; n <= 0x1040; n++ {
				r.add(hex(n), now)
			}
			for n := 0x1000; n <= 0x1040; n++ {
				if got := r.exact(tt.receipt(n), now); got != tt.want {
					t.Fatalf("unambiguous receipt %q: Exact %v, want %v", tt.receipt(n), got, tt.want)
				}
			}
			// 0x10 and 0x16 sent: "16" is 0x16 in hex and 0x10 in decimal.
			r.add(hex(0x10), now)
			r.add(hex(0x16), now)
			if got := r.exact("16", now); got != tt.want {
				t.Fatalf("ambiguous receipt 16: Exact %v, want %v", got, tt.want)
			}
		})
	}
	// No evidence yet: an ambiguous receipt is not marked.
	r := newRecentIDs()
	r.add(hex(0x10), now)
	r.add(hex(0x16), now)
	if r.exact("16", now) {
		t.Fatal("ambiguous receipt with no evidence: marked Exact")
	}
}

// Over a session: a receipt of an id that a submit_sm_resp returned (read
// just before it) is marked Exact, in any spelling of its canonical form,
// and so is the same receipt sent again. A receipt of an id no submit
// returned, or of one whose submit was refused, is not marked.
func TestSession_RecentIDsMarkReceipts(t *testing.T) {
	h := newReceipts()
	s, p := startPeer(t, sessionConfig{Handler: h, Carrier: "c1", Recent: newRecentIDs()})
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
	for seq := uint32(91); seq <= 92; seq++ { // the carrier sends it twice
		if r := deliver(seq, "id:0000000016 stat:DELIVRD"); !r.Exact || r.State != otp.StateDelivered {
			t.Fatalf("DELIVRD receipt (seq %d): got %+v, want Exact", seq, r)
		}
	}
	if r := deliver(93, "id:11 stat:DELIVRD"); r.Exact {
		t.Fatalf("receipt of an id no submit returned: got %+v, want not Exact", r)
	}
	submit(0x58, "0000000020") // ESME_RTHROTTLED with an id: not an accepted message
	if r := deliver(94, "id:20 stat:DELIVRD"); r.Exact {
		t.Fatalf("receipt of a refused submit's id: got %+v, want not Exact", r)
	}
}

// BenchmarkRecentIDs is what one send and its receipt cost the set: add
// (submit_sm_resp) and exact (receipt).
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
		if !r.exact(id, now) {
			b.Fatal("lost")
		}
		i++
	}
}
