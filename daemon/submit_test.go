package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

func TestParseConfig_SubmitKeys(t *testing.T) {
	cfg, err := daemon.ParseConfig(strings.NewReader(`
clients:
  - id: c
    tlvs: {0x1400: 1101234567890, "0x1500": "hex:00ff"}
    default_text_tlvs: {"6": {"0x1401": "1107000000000000006"}}
    custom_texts:
      "41": "Your OTP for login is ####"
      "42": {text: "Login code ######", tlvs: {"0x1401": "1107000000000000042"}}
carriers:
  - name: in
    source_ton: 5
    source_npi: auto
    dest_ton: 2
    dest_npi: 0
    validity: 10m
    validity_format: absolute
    dcs0_charset: latin1
    long_messages: sar
    registered_delivery: 0
    service_type: OTP
    tlvs: {"0x1400": "carrier"}
`))
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clients[0]
	// An unquoted 0x1400 and a long digit string keep their text.
	if want := map[string]string{"0x1400": "1101234567890", "0x1500": "hex:00ff"}; !reflect.DeepEqual(cl.TLVs, want) {
		t.Errorf("tlvs: got %v, want %v", cl.TLVs, want)
	}
	if got := cl.DefaultTextTLVs["6"]["0x1401"]; got != "1107000000000000006" {
		t.Errorf("default_text_tlvs: got %q", got)
	}
	want := map[string]daemon.CustomText{
		"41": {Text: "Your OTP for login is ####"},
		"42": {Text: "Login code ######", TLVs: map[string]string{"0x1401": "1107000000000000042"}},
	}
	if !reflect.DeepEqual(cl.CustomTexts, want) {
		t.Errorf("custom_texts: got %+v, want %+v", cl.CustomTexts, want)
	}
	k := cfg.Carriers[0]
	if k.SourceTON != "5" || k.SourceNPI != "auto" || *k.DestTON != 2 || *k.DestNPI != 0 || k.Validity != "10m" ||
		k.ValidityFormat != "absolute" || k.DCS0Charset != "latin1" || k.LongMessages != "sar" || *k.RegisteredDelivery != 0 ||
		k.ServiceType != "OTP" || k.TLVs["0x1400"] != "carrier" {
		t.Errorf("carrier: got %+v", k)
	}
	for _, bad := range []string{
		`clients: [{id: c, custom_texts: {"41": {text: "x ####", tlv: {}}}}]`,
		`clients: [{id: c, custom_texts: {"41": ["x ####"]}}]`,
		`carriers: [{name: a, dest_ton: auto}]`,
	} {
		if _, err := daemon.ParseConfig(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: got nil error", bad)
		}
	}
}

func TestValidate_SubmitKeys(t *testing.T) {
	cfg, err := daemon.ParseConfig(strings.NewReader(`
clients:
  - id: c
    api_keys: ["` + daemon.HashKey("k") + `"]
    sender: ACME
    countries: ["*"]
    tlvs: {"1400": "x", "0x0424": "x", "0x1401": "hex:abc", "0x14ab": "a", "0X14AB": "b"}
    default_text_tlvs: {"41": {"0x1401": "x"}, "6": {"0x14zz": "x"}}
    custom_texts:
      "41": {text: "Login ####", tlvs: {"0x020C": "x"}}
carriers:
  - name: a
    address: "127.0.0.1:2775"
    system_id: a
    source_ton: 7
    source_npi: national
    dest_ton: -1
    dest_npi: 19
    validity: 0s
    validity_format: epoch
    dcs0_charset: utf8
    long_messages: mms
    registered_delivery: 256
    service_type: TOOLONG
    tlvs: {"0x020F": "x"}
  - name: b
    address: "127.0.0.1:2775"
    system_id: b
    service_type: "A B"
    validity: forever
routes: [{countries: ["*"], carriers: [a]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SecretFile = filepath.Join(t.TempDir(), "otp.secret")
	got := cfg.Validate().Error()
	for _, want := range []string{
		`clients[0].tlvs.1400: tlv tag "1400": want 0x and 1 to 4 hex digits`,
		"clients[0].tlvs.0x0424: tlv tag 0x0424 is message_payload, which otpgate sets itself",
		`clients[0].tlvs.0x1401: tlv 0x1401: value after "hex:" is not an even number of hex digits`,
		"clients[0].tlvs.0x14ab: same tag as 0X14AB",
		`clients[0].default_text_tlvs.41: "41" is not a default text`,
		`clients[0].default_text_tlvs.6.0x14zz: tlv tag "0x14zz"`,
		"clients[0].custom_texts.41.tlvs.0x020C: tlv tag 0x020C is sar_msg_ref_num",
		`carriers[0].source_ton: want auto or 0..6, got "7"`,
		`carriers[0].source_npi: want auto or 0..18, got "national"`,
		"carriers[0].dest_ton: want 0..6, got -1",
		"carriers[0].dest_npi: want 0..18, got 19",
		"carriers[0].registered_delivery: want 0..255, got 256",
		`carriers[0].validity: want ttl, none or a positive duration like "10m", got "0s"`,
		`carriers[0].validity_format: want relative or absolute, got "epoch"`,
		`carriers[0].dcs0_charset: want gsm7, latin1 or ascii, got "utf8"`,
		`carriers[0].long_messages: want udh, sar or payload, got "mms"`,
		"carriers[0].service_type: longer than 5 characters",
		"carriers[0].tlvs.0x020F: tlv tag 0x020F is sar_segment_seqnum",
		`carriers[1].service_type: want printable ASCII without spaces, got "A B"`,
		`carriers[1].validity: want ttl, none or a positive duration like "10m", got "forever"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, strings.ReplaceAll(got, "; ", "\n"))
		}
	}
}

// TestGateway_DLTTLVs sends through the HTTP API for a client set up for
// India's DLT: every submit must carry exactly the carrier's, client's and
// text's TLVs, merged text over client over carrier.
func TestGateway_DLTTLVs(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	dir := t.TempDir()
	cfg, err := daemon.ParseConfig(strings.NewReader(fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
secret_file: %s
submit_timeout: 5s
otp: {ttl: 5m, resend_interval: 0s}
clients:
  - id: dlt
    api_keys: ["%s"]
    sender: ACMEOT
    countries: [IN]
    tlvs: {"0x1400": "1101234567890"}
    default_text_tlvs: {"6": {"0x1401": "1107000000000000006"}}
    custom_texts:
      "41": {text: "Your ACME login code is #### -ACME", tlvs: {"0x1401": "1107000000000000041"}}
      "42": "No template id: ####"
  - id: plain
    api_keys: ["%s"]
    sender: ACME
    countries: [IN]
carriers:
  - name: in
    address: "%s"
    system_id: carrier-a
    password: pw-a
    dest_ton: 2
    tlvs: {"0x1400": "carrier-default", "0x1500": "hex:0102"}
routes:
  - countries: [IN]
    carriers: [in]
`, filepath.Join(dir, "data"), filepath.Join(dir, "otp.secret"), daemon.HashKey(keyA), daemon.HashKey(keyB), sim.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "in")
	carrier := map[uint16][]byte{0x1500: {0x01, 0x02}}
	with := func(extra map[uint16][]byte) map[uint16][]byte {
		m := map[uint16][]byte{}
		for k, v := range carrier {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		client, key, text string
		want              map[uint16][]byte
	}{
		{"dlt", keyA, "6", with(map[uint16][]byte{0x1400: []byte("1101234567890"), 0x1401: []byte("1107000000000000006")})},
		{"dlt", keyA, "41", with(map[uint16][]byte{0x1400: []byte("1101234567890"), 0x1401: []byte("1107000000000000041")})},
		{"dlt", keyA, "42", with(map[uint16][]byte{0x1400: []byte("1101234567890")})},
		{"dlt", keyA, "8", with(map[uint16][]byte{0x1400: []byte("1101234567890")})},
		{"plain", keyB, "6", with(map[uint16][]byte{0x1400: []byte("carrier-default")})},
	}
	for i, tt := range tests {
		t.Run(tt.client+"Text"+tt.text, func(t *testing.T) {
			number := fmt.Sprintf("98765432%02d", i)
			code, body := call(t, "POST", g.url+"/api/v3/otp-verification/send-otp", tt.key, sendBody(tt.client, "+91-"+number, tt.text))
			if code != 200 {
				t.Fatalf("send: got %d %s", code, body)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			msgs, err := sim.WaitMessages(ctx, i+1)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[i]
			if m.Dst != number || m.DstTON != 2 {
				t.Fatalf("destination: got %q TON %d, want the national number %s TON 2", m.Dst, m.DstTON, number)
			}
			if !reflect.DeepEqual(m.TLVs, tt.want) {
				t.Fatalf("TLVs: got %x, want %x", m.TLVs, tt.want)
			}
			if m.ValidityPeriod == "" || !strings.HasSuffix(m.ValidityPeriod, "R") {
				t.Fatalf("validity_period: got %q, want the code's lifetime, relative", m.ValidityPeriod)
			}
		})
	}
}
