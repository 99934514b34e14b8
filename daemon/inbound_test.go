package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestGateway_MO: an MO to client A's sender is POSTed, signed, to A's
// mo_callback_url with the documented body; one to client B's sender (B
// has no mo_callback_url) is acknowledged and dropped; both are counted,
// and no log line holds the number.
func TestGateway_MO(t *testing.T) {
	fastRetries(t)
	receipts := newHook(t, cbSecretA, nil)
	mo := newHook(t, cbSecretA, nil)
	sim := startSim(t, smsc.Options{ReceiptDelay: -1})
	cfg := callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, receipts.srv.URL, "")
	cfg.Clients[0].MOCallbackURL = mo.srv.URL + "/mo"
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	forbidInLogs(t, "9876543210")
	forbidInLogs(t, "Grüße aus")
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "a")

	if err := sim.SendMO(smsc.MO{Src: "919876543210", SrcTON: 1, SrcNPI: 1, Dst: "OTPGATE", DstTON: 5,
		Text: "Grüße aus Köln", DataCoding: 8}); err != nil {
		t.Fatal(err)
	}
	if err := sim.SendMO(smsc.MO{Src: "919876543211", SrcTON: 1, Dst: "12345", Text: "STOP", DataSM: true}); err != nil {
		t.Fatal(err)
	}
	mo.next(t)
	mo.mu.Lock()
	body := mo.bodies[0]
	mo.mu.Unlock()
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	at, err := time.Parse(time.RFC3339, got["receivedAt"])
	if err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Second {
		t.Fatalf("receivedAt %q: %v", got["receivedAt"], err)
	}
	want := fmt.Sprintf(`{"from":"+919876543210","to":"OTPGATE","text":"Grüße aus Köln","carrier":"a","receivedAt":"%s"}`, got["receivedAt"])
	if body != want {
		t.Fatalf("body: got %s, want %s", body, want)
	}
	// Both MOs acknowledged with status 0 and counted.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rs := sim.Responses()
		if len(rs) == 2 {
			// On either bind, in either order.
			if rs[0].Status != 0 || rs[1].Status != 0 || rs[0].Command == rs[1].Command {
				t.Fatalf("responses: got %+v", rs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("responses: got %+v, want 2", rs)
		}
	}
	_, metrics := call(t, "GET", g.admin+"/metrics", "", "")
	if want := `otpgate_mo_total{carrier="a"} 2`; !strings.Contains(metrics, want) {
		t.Fatalf("metrics lack %s", want)
	}
	waitDelivered(t, g, 1)
	g.stop(t)
	if n, r := mo.count(), receipts.count(); n != 1 || r != 0 {
		t.Fatalf("MO hook got %d, receipt hook %d; want 1 and 0", n, r)
	}
}

// TestGateway_ReceiptTimezone: a carrier writing done dates in Indian time
// gets them read in its receipt_timezone, as the status API shows; without
// it the same date is in the future and reads as the arrival.
func TestGateway_ReceiptTimezone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	for _, zone := range []string{"Asia/Kolkata", ""} {
		t.Run("Zone="+zone, func(t *testing.T) {
			sim := startSim(t, smsc.Options{ReceiptLocation: kolkata, ReceiptDoneShift: -30 * time.Minute})
			cfg := testConfig(t, cfgOpts{simAddr: sim.Addr()})
			cfg.Carriers[0].ReceiptTimezone = zone
			g := startGateway(t, cfg)
			code, body := send(t, g, "+91-9876543210")
			if code != 200 {
				t.Fatalf("send: got %d %s", code, body)
			}
			var st struct {
				Result struct{ SubmittedAt, DoneAt string }
			}
			if err := json.Unmarshal([]byte(waitState(t, g, requestID(t, body), "DELIVERED")), &st); err != nil {
				t.Fatal(err)
			}
			sub, err1 := time.Parse(time.RFC3339, st.Result.SubmittedAt)
			done, err2 := time.Parse(time.RFC3339, st.Result.DoneAt)
			if err1 != nil || err2 != nil {
				t.Fatalf("status %+v: %v %v", st.Result, err1, err2)
			}
			back := sub.Sub(done)
			if zone == "" {
				if back > time.Second { // RFC 3339 drops the fraction
					t.Fatalf("done %v is %v before the submit %v; want the arrival", done, back, sub)
				}
				return
			}
			if back < 29*time.Minute || back > 32*time.Minute { // the text has minutes only
				t.Fatalf("done %v is %v before the submit %v; want about 30 minutes", done, back, sub)
			}
		})
	}
}

// TestGateway_ReceiptSequences: an intermediate receipt keeps a message
// ACCEPTED and queues no callback; the first final state is never
// replaced by a later receipt.
func TestGateway_ReceiptSequences(t *testing.T) {
	fastRetries(t)
	tests := []struct {
		name   string
		states []string
		want   string
	}{
		{"EnrouteThenDelivered", []string{"ENROUTE", "BUFFRED", "DELIVRD"}, "DELIVERED"},
		{"DeliveredThenUndeliverable", []string{"DELIVRD", "UNDELIV"}, "DELIVERED"},
		{"DeliveredThenAccepted", []string{"DELIVRD", "ACCEPTD"}, "DELIVERED"},
		{"EnrouteThenExpired", []string{"ENROUTE", "EXPIRED"}, "EXPIRED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHook(t, cbSecretA, nil)
			sim := startSim(t, smsc.Options{ReceiptStates: tt.states, ReceiptTLV: true})
			g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, h.srv.URL, ""))
			code, body := send(t, g, "+91-9876543210")
			if code != 200 {
				t.Fatalf("send: got %d %s", code, body)
			}
			reqID := requestID(t, body)
			// Every receipt of the sequence was acknowledged: the store
			// has seen them all.
			for deadline := time.Now().Add(10 * time.Second); sim.Stats().ReceiptsAcked < uint64(len(tt.states)); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("acked %d receipts, want %d", sim.Stats().ReceiptsAcked, len(tt.states))
				}
			}
			waitState(t, g, reqID, tt.want)
			if cb := h.next(t); cb.State != tt.want {
				t.Fatalf("callback: got %+v, want %s", cb, tt.want)
			}
			waitDelivered(t, g, 1)
			g.stop(t)
			if n := h.count(); n != 1 {
				t.Fatalf("got %d callbacks, want 1", n)
			}
		})
	}
}
