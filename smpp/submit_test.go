package smpp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// startCarrier runs a carrier that logs to logger and waits for its bind.
func startCarrier(tb testing.TB, cfg smpp.CarrierOptions, logger *slog.Logger) *smpp.Carrier {
	tb.Helper()
	c := smpp.NewCarrier(cfg, nil, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: got %v, want nil", err)
		}
	})
	waitBound(tb, c, 1)
	return c
}

// submitOne submits sms and returns what the simulator received for it.
func submitOne(tb testing.TB, c *smpp.Carrier, sim *smsc.Server, sms otp.SMS) []smsc.Message {
	tb.Helper()
	before := len(sim.Messages())
	ids, err := c.Submit(ctxTimeout(tb, 5*time.Second), sms)
	if err != nil {
		tb.Fatalf("Submit: %v", err)
	}
	msgs := sim.Messages()[before:]
	if len(msgs) != len(ids) {
		tb.Fatalf("simulator got %d messages, Submit returned %d ids", len(msgs), len(ids))
	}
	return msgs
}

// relative reads "YYMMDDhhmmss000R" with YY and MM 0.
func relative(tb testing.TB, vp string) time.Duration {
	tb.Helper()
	var yy, mm, dd, h, m, s int
	if len(vp) != 16 || !strings.HasSuffix(vp, "000R") {
		tb.Fatalf("validity_period %q is not relative", vp)
	}
	if _, err := fmt.Sscanf(vp[:12], "%2d%2d%2d%2d%2d%2d", &yy, &mm, &dd, &h, &m, &s); err != nil || yy != 0 || mm != 0 {
		tb.Fatalf("validity_period %q: %v", vp, err)
	}
	return time.Duration(((dd*24+h)*60+m)*60+s) * time.Second
}

// absolute reads "YYMMDDhhmmsst00+".
func absolute(tb testing.TB, vp string) time.Time {
	tb.Helper()
	if len(vp) != 16 || !strings.HasSuffix(vp, "00+") {
		tb.Fatalf("validity_period %q is not absolute UTC", vp)
	}
	t, err := time.Parse("060102150405", vp[:12])
	if err != nil {
		tb.Fatalf("validity_period %q: %v", vp, err)
	}
	return t.Add(time.Duration(vp[12]-'0') * 100 * time.Millisecond)
}

func TestCarrier_Validity(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	ttl := 5 * time.Minute
	tests := []struct {
		name             string
		validity, format string
		period           time.Duration
		noExpiry         bool
		check            func(t *testing.T, vp string, expires time.Time)
	}{
		{"DefaultIsTTLRelative", "", "", 0, false, func(t *testing.T, vp string, _ time.Time) {
			if d := relative(t, vp); d > ttl || d < ttl-10*time.Second {
				t.Fatalf("got %s (%s), want the code's remaining lifetime, at most %s", vp, d, ttl)
			}
		}},
		{"TTLAbsolute", smpp.ValidityTTL, smpp.ValidityAbsolute, 0, false, func(t *testing.T, vp string, expires time.Time) {
			if at := absolute(t, vp); at.After(expires) || at.Before(expires.Add(-time.Second)) {
				t.Fatalf("got %s (%s), want the expiry %s", vp, at, expires.UTC())
			}
		}},
		{"Fixed", smpp.ValidityFixed, "", 10 * time.Minute, false, func(t *testing.T, vp string, _ time.Time) {
			if vp != "000000001000000R" {
				t.Fatalf("got %q, want 000000001000000R", vp)
			}
		}},
		{"FixedAbsolute", smpp.ValidityFixed, smpp.ValidityAbsolute, time.Hour, false, func(t *testing.T, vp string, _ time.Time) {
			if at := absolute(t, vp); at.Before(time.Now().Add(50*time.Minute)) || at.After(time.Now().Add(time.Hour)) {
				t.Fatalf("got %s (%s), want about an hour from now", vp, at)
			}
		}},
		{"None", smpp.ValidityNone, "", 0, false, func(t *testing.T, vp string, _ time.Time) {
			if vp != "" {
				t.Fatalf("got %q, want none", vp)
			}
		}},
		{"TTLWithoutExpiry", smpp.ValidityTTL, "", 0, true, func(t *testing.T, vp string, _ time.Time) {
			if vp != "" {
				t.Fatalf("got %q for an SMS without expiry, want none", vp)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := carrierConfig("a", sim.Addr())
			cfg.Validity, cfg.ValidityFormat, cfg.ValidityPeriod = tt.validity, tt.format, tt.period
			c := startCarrier(t, cfg, nil)
			sms := testSMS(strings.Repeat("long text ", 20)) // two parts: both carry it
			if !tt.noExpiry {
				sms.Expires = time.Now().Add(ttl)
			}
			msgs := submitOne(t, c, sim, sms)
			if len(msgs) != 2 {
				t.Fatalf("got %d parts, want 2", len(msgs))
			}
			for _, m := range msgs {
				tt.check(t, m.ValidityPeriod, sms.Expires)
			}
		})
	}
}

// TestCarrier_UnusableMessageID: an SMSC that accepts a submit but answers
// an empty message_id, or one longer than SMPP's 64 characters, has taken
// the SMS: Submit succeeds (an error would have it sent again) with an
// empty id, which nothing indexes, and says so in the log. A 65,000-byte
// id made the store's index key too long, after the SMS had gone out.
func TestCarrier_UnusableMessageID(t *testing.T) {
	for _, tt := range []struct{ name, id string }{
		{"Empty", ""},
		{"Blank", "   "},
		{"TooLong", strings.Repeat("9", 65)},
		{"Huge", strings.Repeat("A", 65000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
			sim.SetAckID(tt.id, true)
			var logs syncbuf.Buffer
			c := startCarrier(t, carrierConfig("a", sim.Addr()), slog.New(slog.NewJSONHandler(&logs, nil)))
			ids, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("Your code 1234"))
			if err != nil || len(ids) != 1 || ids[0] != "" {
				t.Fatalf("Submit: got %q, %v, want one empty id and no error", ids, err)
			}
			if st := sim.Stats(); st.Accepted != 1 || st.Submits != 1 {
				t.Fatalf("Stats: got %d submits, %d accepted, want 1 and 1", st.Submits, st.Accepted)
			}
			if !strings.Contains(logs.String(), `"level":"WARN","msg":"submit accepted without a usable message_id`) {
				t.Fatalf("no warning:\n%s", logs.String())
			}
		})
	}
	t.Run("Longest", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		id := strings.Repeat("7", smpp.MaxReceiptIDLen)
		sim.SetAckID(id, true)
		c := startCarrier(t, carrierConfig("a", sim.Addr()), nil)
		if ids, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("Your code 1234")); err != nil || len(ids) != 1 || ids[0] != id {
			t.Fatalf("Submit: got %q, %v, want the 64-character id", ids, err)
		}
	})
}

func TestCarrier_ValidityRefused(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetRejectValidity(true)
	var logs syncbuf.Buffer
	c := startCarrier(t, carrierConfig("a", sim.Addr()), slog.New(slog.NewJSONHandler(&logs, nil)))
	sms := testSMS("Your code 1234")
	sms.Expires = time.Now().Add(time.Minute)
	for i := range 3 {
		msgs := submitOne(t, c, sim, sms)
		if msgs[0].ValidityPeriod != "" {
			t.Fatalf("send %d: got validity_period %q, want none after the refusal", i, msgs[0].ValidityPeriod)
		}
	}
	// One refused round trip, then the carrier is known: 3 SMS, 4 submits.
	if st := sim.Stats(); st.Submits != 4 || st.Rejected != 1 || st.Accepted != 3 {
		t.Fatalf("Stats: got %d submits, %d rejected, %d accepted, want 4, 1, 3", st.Submits, st.Rejected, st.Accepted)
	}
	if n := strings.Count(logs.String(), `"level":"WARN","msg":"carrier refused validity_period`); n != 1 {
		t.Fatalf("got %d warnings, want 1:\n%s", n, logs.String())
	}

	t.Run("NotWithoutValidity", func(t *testing.T) {
		// A carrier that sends none and still gets 0x62 has another
		// problem: the status comes back, no retry.
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		sim.SetSubmitStatus(smpp.StatusInvExpiry)
		cfg := carrierConfig("a", sim.Addr())
		cfg.Validity = smpp.ValidityNone
		c := startCarrier(t, cfg, nil)
		_, err := c.Submit(ctxTimeout(t, 5*time.Second), sms)
		var se *smpp.StatusError
		if !errors.As(err, &se) || se.Status != smpp.StatusInvExpiry {
			t.Fatalf("got %v, want status 0x62", err)
		}
		if n := sim.Stats().Submits; n != 1 {
			t.Fatalf("submits: got %d, want 1", n)
		}
	})
}

func u8(v uint8) *uint8 { return &v }

func TestCarrier_Addresses(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	tests := []struct {
		name             string
		source           string
		srcTON, srcNPI   *uint8
		dstTON, dstNPI   *uint8
		wantSrcTON       uint8
		wantSrcNPI       uint8
		wantDst          string
		wantDTON, wantDN uint8
	}{
		{"Defaults", "OTPGATE", nil, nil, nil, nil, 5, 0, "447700900123", 1, 1},
		{"SourceTONOnly", "OTPGATE", u8(1), nil, nil, nil, 1, 0, "447700900123", 1, 1},
		{"SourceBoth", "12345", u8(0), u8(0), nil, nil, 0, 0, "447700900123", 1, 1},
		{"DestUnknownISDN", "OTPGATE", nil, nil, u8(0), u8(1), 5, 0, "447700900123", 0, 1},
		{"DestNational", "OTPGATE", nil, nil, u8(2), u8(1), 5, 0, "7700900123", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := carrierConfig("a", sim.Addr())
			cfg.SourceTON, cfg.SourceNPI, cfg.DestTON, cfg.DestNPI = tt.srcTON, tt.srcNPI, tt.dstTON, tt.dstNPI
			c := startCarrier(t, cfg, nil)
			sms := testSMS("code 1")
			sms.Source, sms.CountryCode = tt.source, "44"
			m := submitOne(t, c, sim, sms)[0]
			if m.SrcTON != tt.wantSrcTON || m.SrcNPI != tt.wantSrcNPI || m.Dst != tt.wantDst || m.DstTON != tt.wantDTON || m.DstNPI != tt.wantDN {
				t.Fatalf("got source %d/%d, destination %q %d/%d, want %d/%d, %q %d/%d", m.SrcTON, m.SrcNPI, m.Dst, m.DstTON, m.DstNPI,
					tt.wantSrcTON, tt.wantSrcNPI, tt.wantDst, tt.wantDTON, tt.wantDN)
			}
		})
	}
	t.Run("NationalNeedsCountryCode", func(t *testing.T) {
		cfg := carrierConfig("a", sim.Addr())
		cfg.DestTON = u8(2)
		c := startCarrier(t, cfg, nil)
		before := sim.Stats().Submits
		for _, cc := range []string{"", "1", "447700900123"} {
			sms := testSMS("code 1")
			sms.CountryCode = cc
			if _, err := c.Submit(ctxTimeout(t, 5*time.Second), sms); err == nil {
				t.Fatalf("country code %q: got nil error", cc)
			}
		}
		if n := sim.Stats().Submits - before; n != 0 {
			t.Fatalf("submits: got %d, want 0", n)
		}
	})
	t.Run("CarrierRequiresNational", func(t *testing.T) {
		// The simulator as a carrier that takes national numbers only: the
		// default settings are refused with ESME_RINVDSTTON, dest_ton 2 passes.
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		sim.SetSubmitPolicy(smsc.RequireDest(2, 1))
		sms := testSMS("code 1")
		sms.CountryCode = "44"
		c := startCarrier(t, carrierConfig("a", sim.Addr()), nil)
		_, err := c.Submit(ctxTimeout(t, 5*time.Second), sms)
		var se *smpp.StatusError
		if !errors.As(err, &se) || se.Status != smpp.StatusInvDstTON {
			t.Fatalf("default dest_ton: got %v, want status 0x50", err)
		}
		cfg := carrierConfig("b", sim.Addr())
		cfg.DestTON = u8(2)
		if m := submitOne(t, startCarrier(t, cfg, nil), sim, sms)[0]; m.Dst != "7700900123" {
			t.Fatalf("dest_ton 2: got %q, want 7700900123", m.Dst)
		}
	})
}

func TestCarrier_TLVs(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.TLVs = []otp.TLV{{Tag: 0x1400, Value: []byte("carrier-pe")}, {Tag: 0x1500, Value: []byte{0x00, 0x01}}}
	c := startCarrier(t, cfg, nil)
	sms := testSMS("code 1")
	sms.TLVs = []otp.TLV{{Tag: 0x1400, Value: []byte("1101234567890")}, {Tag: 0x1401, Value: []byte("1107161234567890123")}}
	want := map[uint16][]byte{0x1400: []byte("1101234567890"), 0x1401: []byte("1107161234567890123"), 0x1500: {0x00, 0x01}}
	if m := submitOne(t, c, sim, sms)[0]; !reflect.DeepEqual(m.TLVs, want) {
		t.Fatalf("got %x, want %x", m.TLVs, want)
	}
	t.Run("EveryPart", func(t *testing.T) {
		long := sms
		long.Text = strings.Repeat("0123456789", 40)
		msgs := submitOne(t, c, sim, long)
		if len(msgs) != 3 {
			t.Fatalf("parts: got %d, want 3", len(msgs))
		}
		for i, m := range msgs {
			if !reflect.DeepEqual(m.TLVs, want) {
				t.Fatalf("part %d: got %x, want %x", i+1, m.TLVs, want)
			}
		}
	})
	t.Run("CarrierOnly", func(t *testing.T) {
		want := map[uint16][]byte{0x1400: []byte("carrier-pe"), 0x1500: {0x00, 0x01}}
		if m := submitOne(t, c, sim, testSMS("code 2"))[0]; !reflect.DeepEqual(m.TLVs, want) {
			t.Fatalf("got %x, want %x", m.TLVs, want)
		}
	})
}

func TestCarrier_DCS0Charset(t *testing.T) {
	tests := []struct {
		charset string
		text    string
		dc      uint8
	}{
		{smpp.CharsetGSM7, "Código @ 1234", 8}, // ó is not GSM 03.38
		{smpp.CharsetGSM7, "Señor @ 1234 {ok}", 0},
		{smpp.CharsetLatin1, "Señor @ 1234 {ok}", 0},
		{smpp.CharsetLatin1, "Code 1234 ©", 8},
		{smpp.CharsetLatin1, "Code 1234 €", 8},
		{smpp.CharsetLatin1, strings.Repeat("é", 170), 0}, // two parts, Latin-1 bytes behind the UDH
		{smpp.CharsetASCII, "Code @ 1234 {ok}", 0},
		{smpp.CharsetASCII, "Code £ 1234", 8},
		{smpp.CharsetASCII, "Señor 1234", 8},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s%d", tt.charset, i), func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{ReceiptDelay: -1, DCS0Charset: tt.charset})
			cfg := carrierConfig("a", sim.Addr())
			cfg.DCS0Charset = tt.charset
			msgs := submitOne(t, startCarrier(t, cfg, nil), sim, testSMS(tt.text))
			var text string
			for _, m := range msgs {
				if m.DataCoding != tt.dc {
					t.Fatalf("data_coding: got %d, want %d", m.DataCoding, tt.dc)
				}
				text += m.Text
			}
			if text != tt.text {
				t.Fatalf("the SMSC read %q, want %q", text, tt.text)
			}
		})
	}
}

func TestCarrier_LongMessages(t *testing.T) {
	gsm := strings.Repeat("0123456789", 20) // 200 septets
	ucs := strings.Repeat("Код 1234. ", 10) // 100 units
	tests := []struct {
		name, long, text string
		parts            []int // characters per submit
		esm              uint8
	}{
		{"UDH", smpp.LongUDH, gsm, []int{153, 47}, 0x40},
		{"SAR", smpp.LongSAR, gsm, []int{153, 47}, 0},
		{"SARUCS2", smpp.LongSAR, ucs, []int{67, 33}, 0},
		{"SARShort", smpp.LongSAR, "code 1", []int{6}, 0},
		{"Payload", smpp.LongPayload, gsm, []int{200}, 0},
		{"PayloadUCS2", smpp.LongPayload, ucs, []int{100}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
			cfg := carrierConfig("a", sim.Addr())
			cfg.LongMessages = tt.long
			c := startCarrier(t, cfg, nil)
			msgs := submitOne(t, c, sim, testSMS(tt.text))
			if len(msgs) != len(tt.parts) {
				t.Fatalf("submits: got %d, want %d", len(msgs), len(tt.parts))
			}
			var text string
			for i, m := range msgs {
				if n := len([]rune(m.Text)); n != tt.parts[i] || m.ESMClass != tt.esm {
					t.Fatalf("part %d: got %d characters esm %#x, want %d esm %#x", i+1, n, m.ESMClass, tt.parts[i], tt.esm)
				}
				_, sar := m.TLVs[0x020C]
				if multi := len(msgs) > 1; tt.long == smpp.LongSAR && (sar != multi || multi && (m.Part != i+1 || m.Parts != len(msgs) ||
					m.Ref != msgs[0].Ref || len(m.TLVs[0x020C]) != 2)) {
					t.Fatalf("part %d: got sar %v %d/%d ref %d tlvs %x, want sar_* TLVs on split messages only", i+1, sar, m.Part, m.Parts, m.Ref, m.TLVs)
				}
				if _, payload := m.TLVs[0x0424]; payload != (tt.long == smpp.LongPayload) {
					t.Fatalf("part %d: message_payload present %v, want %v", i+1, payload, !payload)
				}
				text += m.Text
			}
			if text != tt.text {
				t.Fatalf("text: got %q, want %q", text, tt.text)
			}
		})
	}
}

func TestCarrier_RegisteredDeliveryAndServiceType(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond})
	cfg := carrierConfig("a", sim.Addr())
	cfg.RegisteredDelivery, cfg.ServiceType = u8(0), "OTP"
	c := startCarrier(t, cfg, nil)
	m := submitOne(t, c, sim, testSMS("code 1"))[0]
	if m.RegisteredDelivery != 0 || m.ServiceType != "OTP" {
		t.Fatalf("got registered_delivery %d service_type %q, want 0 and OTP", m.RegisteredDelivery, m.ServiceType)
	}
	// Another SMS with a receipt proves that none was coming for the first.
	cfg = carrierConfig("b", sim.Addr())
	h := newHandler()
	cb := smpp.NewCarrier(cfg, h, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cb.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitBound(t, cb, 1)
	m2 := submitOne(t, cb, sim, testSMS("code 2"))[0]
	if r := h.wait(t, 1); r[0].MessageID != m2.ID || m2.RegisteredDelivery != 1 || m2.ServiceType != "" {
		t.Fatalf("default carrier: got receipt %+v, registered_delivery %d, service_type %q", r[0], m2.RegisteredDelivery, m2.ServiceType)
	}
	if n := sim.Stats().ReceiptsSent; n != 1 {
		t.Fatalf("receipts sent: got %d, want only the one asked for", n)
	}
}

func TestCarrier_BadSubmitConfig(t *testing.T) {
	for _, mod := range []func(*smpp.CarrierOptions){
		func(c *smpp.CarrierOptions) { c.SourceTON = u8(7) },
		func(c *smpp.CarrierOptions) { c.DestNPI = u8(19) },
		func(c *smpp.CarrierOptions) { c.Validity = "forever" },
		func(c *smpp.CarrierOptions) { c.Validity = smpp.ValidityFixed },
		func(c *smpp.CarrierOptions) { c.ValidityFormat = "epoch" },
		func(c *smpp.CarrierOptions) { c.DCS0Charset = "utf8" },
		func(c *smpp.CarrierOptions) { c.LongMessages = "mms" },
		func(c *smpp.CarrierOptions) { c.ServiceType = "TOOLONG" },
		func(c *smpp.CarrierOptions) { c.TLVs = []otp.TLV{{Tag: 0x0424}} },
	} {
		cfg := carrierConfig("a", deadAddr(t))
		mod(&cfg)
		// With a done context a good config makes Run return nil at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := smpp.NewCarrier(cfg, nil, nil).Run(ctx); err == nil {
			t.Errorf("%+v: Run got nil error", cfg)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := smpp.NewCarrier(carrierConfig("a", deadAddr(t)), nil, nil).Run(ctx); err != nil {
		t.Errorf("good config: Run got %v, want nil", err)
	}
}

func TestParseTLV(t *testing.T) {
	tests := []struct {
		tag, value string
		want       otp.TLV
		err        bool
	}{
		{"0x1400", "1101234567890", otp.TLV{Tag: 0x1400, Value: []byte("1101234567890")}, false},
		{"0X1401", "hex:0a0B", otp.TLV{Tag: 0x1401, Value: []byte{0x0A, 0x0B}}, false},
		{"0x1", "", otp.TLV{Tag: 1, Value: []byte{}}, false},
		{"0xffff", "hex:", otp.TLV{Tag: 0xFFFF, Value: []byte{}}, false},
		{"1400", "x", otp.TLV{}, true},
		{"0x", "x", otp.TLV{}, true},
		{"0x12345", "x", otp.TLV{}, true},
		{"0x14g0", "x", otp.TLV{}, true},
		{"0x1400", "hex:abc", otp.TLV{}, true},
		{"0x1400", "hex:zz", otp.TLV{}, true},
		{"0x020C", "x", otp.TLV{}, true},
		{"0x20e", "x", otp.TLV{}, true},
		{"0x020F", "x", otp.TLV{}, true},
		{"0x0424", "x", otp.TLV{}, true},
		{"0x1400", strings.Repeat("x", 0x10000), otp.TLV{}, true},
	}
	for _, tt := range tests {
		got, err := smpp.ParseTLV(tt.tag, tt.value)
		if (err != nil) != tt.err || (!tt.err && (got.Tag != tt.want.Tag || string(got.Value) != string(tt.want.Value))) {
			t.Errorf("ParseTLV(%q, %.10q): got %v %v, want %v (error %v)", tt.tag, tt.value, got, err, tt.want, tt.err)
		}
	}
	got, err := smpp.ParseTLVs(map[string]string{"0x1401": "b", "0x1400": "a"})
	if err != nil || len(got) != 2 || got[0].Tag != 0x1400 || got[1].Tag != 0x1401 {
		t.Errorf("ParseTLVs: got %v %v, want 0x1400 then 0x1401", got, err)
	}
	if _, err := smpp.ParseTLVs(map[string]string{"0x14ab": "a", "0x14AB": "b"}); err == nil || !strings.Contains(err.Error(), "are the same") {
		t.Errorf("ParseTLVs with one tag twice: got %v, want \"are the same\"", err)
	}
}
