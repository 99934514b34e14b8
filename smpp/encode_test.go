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
