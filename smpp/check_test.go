package smpp_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/smpp"
)

func TestCarrierOptions_Check(t *testing.T) {
	ok := smpp.CarrierOptions{SystemID: "acme", Password: "12345678", Mode: smpp.ModeTransceiver, Binds: 1, Burst: 1, Window: 10}
	if ps := ok.Check(); len(ps) != 0 {
		t.Fatalf("valid options: %v", ps)
	}
	for _, tt := range []struct {
		name string
		edit func(*smpp.CarrierOptions)
		keys []string
	}{
		{"NoSystemID", func(o *smpp.CarrierOptions) { o.SystemID = "" }, []string{"system_id"}},
		{"LongSystemID", func(o *smpp.CarrierOptions) { o.SystemID = strings.Repeat("s", 16) }, []string{"system_id"}},
		{"Password16", func(o *smpp.CarrierOptions) { o.Password = strings.Repeat("p", 16) }, nil},
		{"Password17", func(o *smpp.CarrierOptions) { o.Password = strings.Repeat("p", 17) }, []string{"password"}},
		{"Mode", func(o *smpp.CarrierOptions) { o.Mode = "receiver" }, []string{"mode"}},
		{"Counts", func(o *smpp.CarrierOptions) { o.Binds, o.Burst, o.Window, o.TPS = 0, 0, 0, -1 },
			[]string{"binds", "tps", "burst", "window"}},
		{"AckTimeout", func(o *smpp.CarrierOptions) { o.SubmitAckTimeout = -1 }, []string{"submit_ack_timeout"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			var keys []string
			for _, p := range o.Check() {
				keys = append(keys, p.Key)
			}
			if !reflect.DeepEqual(keys, tt.keys) {
				t.Fatalf("got %v, want %v", keys, tt.keys)
			}
		})
	}
}
