package smpp_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/otpgate/otpgate/smpp"
)

func TestEncode(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	zh := func(n int) string { return strings.Repeat("Ж", n) }
	tests := []struct {
		name      string
		text      string
		dc        byte
		partSizes []int // payload bytes of each part (UDH excluded)
	}{
		{"GSM7Short", "Your OTP for verification is 123456", smpp.DataCodingGSM7, []int{35}},
		{"GSM7Empty", "", smpp.DataCodingGSM7, []int{0}},
		{"GSM7Exactly160", a(160), smpp.DataCodingGSM7, []int{160}},
		{"GSM7_161", a(161), smpp.DataCodingGSM7, []int{153, 8}},
		{"GSM7Escapes160", a(158) + "€", smpp.DataCodingGSM7, []int{160}},
		{"GSM7Escapes161", a(159) + "€", smpp.DataCodingGSM7, []int{153, 8}},
		// The escape pair would straddle 153: it moves whole to part 2.
		{"GSM7EscapeNotSplit", a(152) + "{" + a(10), smpp.DataCodingGSM7, []int{152, 12}},
		{"GSM7EscapeAtEnd", a(151) + "{" + a(10), smpp.DataCodingGSM7, []int{153, 10}},
		{"GSM7ThreeParts", a(153*2 + 1), smpp.DataCodingGSM7, []int{153, 153, 1}},
		{"GSM7Specials", "@£$¥_ÆÖÑÜ§¿äöñüà", smpp.DataCodingGSM7, []int{16}},
		{"UCS2Cyrillic", "Код 1234", smpp.DataCodingUCS2, []int{16}},
		{"UCS2Exactly70", zh(70), smpp.DataCodingUCS2, []int{140}},
		{"UCS2_71", zh(71), smpp.DataCodingUCS2, []int{134, 8}},
		// U+1F600 is a surrogate pair at units 67-68: it moves whole to part 2.
		{"UCS2SurrogateNotSplit", zh(66) + "😀" + zh(5), smpp.DataCodingUCS2, []int{132, 14}},
		{"UCS2SurrogateFits", zh(65) + "😀" + zh(5), smpp.DataCodingUCS2, []int{134, 10}},
		{"UCS2EmojiOnly70", strings.Repeat("😀", 35), smpp.DataCodingUCS2, []int{140}},
		{"InvalidUTF8", "\xff\xfe code 12", smpp.DataCodingUCS2, []int{2 * 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := smpp.Encode(tt.text, 0x42)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if e.DataCoding != tt.dc {
				t.Fatalf("data coding: got %d, want %d", e.DataCoding, tt.dc)
			}
			if len(e.Parts) != len(tt.partSizes) {
				t.Fatalf("parts: got %d, want %d", len(e.Parts), len(tt.partSizes))
			}
			split := len(e.Parts) > 1
			if want := map[bool]byte{false: 0, true: smpp.ESMClassUDHI}[split]; e.ESMClass != want {
				t.Fatalf("esm_class: got %#x, want %#x", e.ESMClass, want)
			}
			var joined []byte
			for i, p := range e.Parts {
				if split {
					udh := []byte{0x05, 0x00, 0x03, 0x42, byte(len(e.Parts)), byte(i + 1)}
					if !bytes.HasPrefix(p, udh) {
						t.Fatalf("part %d UDH: got % x, want % x", i, p[:min(6, len(p))], udh)
					}
					p = p[6:]
				}
				if len(p) != tt.partSizes[i] {
					t.Fatalf("part %d payload: got %d bytes, want %d", i, len(p), tt.partSizes[i])
				}
				if tt.dc == smpp.DataCodingGSM7 && len(p) > 0 && p[len(p)-1] == 0x1B {
					t.Fatalf("part %d ends with an escape", i)
				}
				if tt.dc == smpp.DataCodingUCS2 && len(p) >= 2 && p[len(p)-2] >= 0xD8 && p[len(p)-2] <= 0xDB {
					t.Fatalf("part %d ends with a high surrogate", i)
				}
				joined = append(joined, p...)
			}
			if tt.dc == smpp.DataCodingUCS2 && utf8Valid(tt.text) {
				u := make([]uint16, len(joined)/2)
				for i := range u {
					u[i] = uint16(joined[2*i])<<8 | uint16(joined[2*i+1])
				}
				if got := string(utf16.Decode(u)); got != tt.text {
					t.Fatalf("reassembled: got %q, want %q", got, tt.text)
				}
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestEncode_GSM7Bytes(t *testing.T) {
	e, err := smpp.Encode("{€}@", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x1b, 0x28, 0x1b, 0x65, 0x1b, 0x29, 0x00}
	if !bytes.Equal(e.Parts[0], want) {
		t.Fatalf("got % x, want % x", e.Parts[0], want)
	}
}

func TestEncode_ErrTextTooLong(t *testing.T) {
	if _, err := smpp.Encode(strings.Repeat("a", 153*255), 1); err != nil {
		t.Fatalf("255 parts: got %v, want nil", err)
	}
	_, err := smpp.Encode(strings.Repeat("a", 153*255+1), 1)
	if !errors.Is(err, smpp.ErrTextTooLong) {
		t.Fatalf("got %v, want ErrTextTooLong", err)
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("Your OTP for verification is 123456")
	f.Add(strings.Repeat("€", 100))
	f.Add(strings.Repeat("😀Ж", 60))
	f.Fuzz(func(t *testing.T, s string) {
		e, err := smpp.Encode(s, 7)
		if err != nil {
			return
		}
		for _, p := range e.Parts {
			limit := 160
			if e.DataCoding == smpp.DataCodingUCS2 {
				limit = 140
			}
			if len(e.Parts) > 1 {
				limit = map[byte]int{smpp.DataCodingGSM7: 159, smpp.DataCodingUCS2: 140}[e.DataCoding]
			}
			if len(p) > limit {
				t.Fatalf("part of %d bytes > %d", len(p), limit)
			}
		}
	})
}

func TestEncodeWith(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	e := func(n int) string { return strings.Repeat("é", n) }
	zh := func(n int) string { return strings.Repeat("Ж", n) }
	latin1 := smpp.EncodeOptions{Charset: smpp.CharsetLatin1}
	ascii := smpp.EncodeOptions{Charset: smpp.CharsetASCII}
	sar := smpp.EncodeOptions{Long: smpp.LongSAR}
	payload := smpp.EncodeOptions{Long: smpp.LongPayload}
	tests := []struct {
		name  string
		text  string
		opt   smpp.EncodeOptions
		dc    byte
		esm   byte
		parts []int // bytes of each part, UDH excluded
		first []byte
	}{
		{"Latin1", "Señor é 12", latin1, smpp.DataCodingGSM7, 0, []int{10}, []byte("Se\xf1or \xe9 12")},
		{"Latin1NotGSMAcute", "ó", latin1, smpp.DataCodingUCS2, 0, []int{2}, nil},
		{"Latin1Extension", "{x}", latin1, smpp.DataCodingGSM7, 0, []int{3}, []byte("{x}")},
		{"Latin1NotGSM", "© 12", latin1, smpp.DataCodingUCS2, 0, []int{8}, nil},
		{"Latin1Euro", "€ 12", latin1, smpp.DataCodingUCS2, 0, []int{8}, nil},
		{"Latin1Greek", "Δ 12", latin1, smpp.DataCodingUCS2, 0, []int{8}, nil},
		{"Latin1Exactly160", e(160), latin1, smpp.DataCodingGSM7, 0, []int{160}, nil},
		{"Latin1_161", e(161), latin1, smpp.DataCodingGSM7, smpp.ESMClassUDHI, []int{153, 8}, nil},
		// "{" is two septets on the air: 81 of them are 162 septets, cut
		// before the escape pair that would straddle 153.
		{"Latin1EscapesCount", strings.Repeat("{", 81), latin1, smpp.DataCodingGSM7, smpp.ESMClassUDHI, []int{76, 5}, nil},
		{"ASCII", "Code @ 12 {x}", ascii, smpp.DataCodingGSM7, 0, []int{13}, []byte("Code @ 12 {x}")},
		{"ASCIINewline", "a\r\nb", ascii, smpp.DataCodingGSM7, 0, []int{4}, []byte("a\r\nb")},
		{"ASCIIPound", "£1", ascii, smpp.DataCodingUCS2, 0, []int{4}, nil},
		{"ASCIIUmlaut", "ä", ascii, smpp.DataCodingUCS2, 0, []int{2}, nil},
		{"GraveEverywhere", "`", ascii, smpp.DataCodingUCS2, 0, []int{2}, nil},
		{"GSM7Default", "@ä", smpp.EncodeOptions{}, smpp.DataCodingGSM7, 0, []int{2}, []byte{0x00, 0x7B}},
		{"SARShort", a(160), sar, smpp.DataCodingGSM7, 0, []int{160}, nil},
		{"SAR", a(200), sar, smpp.DataCodingGSM7, 0, []int{153, 47}, nil},
		{"SARUCS2", zh(100), sar, smpp.DataCodingUCS2, 0, []int{134, 66}, nil},
		{"Payload", a(400), payload, smpp.DataCodingGSM7, 0, []int{400}, nil},
		{"PayloadUCS2", zh(100), payload, smpp.DataCodingUCS2, 0, []int{200}, nil},
		{"PayloadLatin1", e(200), smpp.EncodeOptions{Charset: smpp.CharsetLatin1, Long: smpp.LongPayload},
			smpp.DataCodingGSM7, 0, []int{200}, []byte(strings.Repeat("\xe9", 200))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := smpp.EncodeWith(tt.text, 0x1234, tt.opt)
			if err != nil {
				t.Fatalf("EncodeWith: %v", err)
			}
			if enc.DataCoding != tt.dc || enc.ESMClass != tt.esm || enc.Ref != 0x1234 {
				t.Fatalf("got dc %d esm %#x ref %#x, want dc %d esm %#x ref 0x1234", enc.DataCoding, enc.ESMClass, enc.Ref, tt.dc, tt.esm)
			}
			if len(enc.Parts) != len(tt.parts) {
				t.Fatalf("parts: got %d, want %d", len(enc.Parts), len(tt.parts))
			}
			for i, p := range enc.Parts {
				if tt.esm == smpp.ESMClassUDHI {
					udh := []byte{0x05, 0x00, 0x03, 0x34, byte(len(enc.Parts)), byte(i + 1)}
					if !bytes.HasPrefix(p, udh) {
						t.Fatalf("part %d UDH: got % x, want % x", i, p[:min(6, len(p))], udh)
					}
					p = p[6:]
				}
				if len(p) != tt.parts[i] {
					t.Fatalf("part %d: got %d bytes, want %d", i, len(p), tt.parts[i])
				}
			}
			if tt.first != nil && !bytes.Equal(enc.Parts[0], tt.first) {
				t.Fatalf("bytes: got % x, want % x", enc.Parts[0], tt.first)
			}
		})
	}
}

func TestEncodeWith_Errors(t *testing.T) {
	payload := smpp.EncodeOptions{Long: smpp.LongPayload}
	if _, err := smpp.EncodeWith(strings.Repeat("a", 0xFFFF), 1, payload); err != nil {
		t.Fatalf("65535 bytes of payload: got %v, want nil", err)
	}
	if _, err := smpp.EncodeWith(strings.Repeat("a", 0x10000), 1, payload); !errors.Is(err, smpp.ErrTextTooLong) {
		t.Fatalf("65536 bytes of payload: got %v, want ErrTextTooLong", err)
	}
	sar := smpp.EncodeOptions{Long: smpp.LongSAR}
	if _, err := smpp.EncodeWith(strings.Repeat("a", 153*255+1), 1, sar); !errors.Is(err, smpp.ErrTextTooLong) {
		t.Fatalf("256 SAR parts: got %v, want ErrTextTooLong", err)
	}
	for _, opt := range []smpp.EncodeOptions{{Charset: "utf8"}, {Long: "mms"}} {
		if _, err := smpp.EncodeWith("a", 1, opt); err == nil {
			t.Errorf("%+v: got nil error", opt)
		}
	}
}

// FuzzEncodeWith checks, for every charset and method, that data_coding 0
// parts read back (in their charset) as the text, and that no part
// exceeds an SMS.
func FuzzEncodeWith(f *testing.F) {
	f.Add("Señor é 12 {x}", uint8(1), uint8(0))
	f.Add(strings.Repeat("é{", 90), uint8(1), uint8(1))
	f.Add("Code @ 12\r\n", uint8(2), uint8(2))
	charsets := []string{smpp.CharsetGSM7, smpp.CharsetLatin1, smpp.CharsetASCII}
	longs := []string{smpp.LongUDH, smpp.LongSAR, smpp.LongPayload}
	f.Fuzz(func(t *testing.T, s string, cs, long uint8) {
		opt := smpp.EncodeOptions{Charset: charsets[int(cs)%3], Long: longs[int(long)%3]}
		e, err := smpp.EncodeWith(s, 7, opt)
		if err != nil {
			return
		}
		var joined []byte
		for _, p := range e.Parts {
			if e.ESMClass == smpp.ESMClassUDHI {
				p = p[6:]
			}
			if opt.Long != smpp.LongPayload && len(p) > 160 {
				t.Fatalf("part of %d bytes > 160", len(p))
			}
			joined = append(joined, p...)
		}
		if e.DataCoding != smpp.DataCodingGSM7 || opt.Charset == smpp.CharsetGSM7 {
			return
		}
		r := make([]rune, len(joined))
		for i, b := range joined {
			r[i] = rune(b)
		}
		if string(r) != s {
			t.Fatalf("%s: read back %q, want %q", opt.Charset, string(r), s)
		}
	})
}
