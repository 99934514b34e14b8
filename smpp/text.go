package smpp

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"

	"github.com/fiorix/go-smpp/smpp/encoding"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
)

// gsm7Base and gsm7Ext are GSM 03.38's default alphabet and its extension
// table (the character after the 0x1B escape), read once from go-smpp's
// codec: decoding a whole text with it fails on the first byte it does not
// know, and an MO must not lose its text to one bad byte. 0 marks a septet
// the table does not define.
var gsm7Base, gsm7Ext = gsm7Tables()

func gsm7Tables() (base, ext [128]rune) {
	dec := encoding.GSM7(false).NewDecoder()
	first := func(b []byte) rune {
		out, err := dec.Bytes(b)
		if err != nil {
			return 0
		}
		for _, r := range string(out) {
			return r
		}
		return 0
	}
	for i := 0; i < 128; i++ {
		if i != escapeSeptet {
			base[i] = first([]byte{byte(i)})
		}
		ext[i] = first([]byte{escapeSeptet, byte(i)})
	}
	return base, ext
}

// decodeGSM7 decodes unpacked GSM 03.38 septets. An escape followed by a
// code the extension table lacks shows the default table's character, as
// 3GPP TS 23.038 asks of a handset; an octet above 0x7F, or a septet with
// no character, becomes U+FFFD.
func decodeGSM7(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == escapeSeptet && i+1 < len(b) && b[i+1] < 0x80 {
			i++
			if r := gsm7Ext[b[i]]; r != 0 {
				sb.WriteRune(r)
				continue
			}
			c = b[i]
		}
		if c < 0x80 && gsm7Base[c] != 0 {
			sb.WriteRune(gsm7Base[c])
		} else {
			sb.WriteRune('\uFFFD')
		}
	}
	return sb.String()
}

// decodeText decodes the user data of an MO (its UDH removed) by its
// data_coding (SMPP 3.4 §5.2.19, and the GSM 03.38 coding groups beyond
// 0x0F): GSM 03.38 unpacked (0x00 and the GSM7 codings), IA5/ASCII (0x01),
// Latin-1 (0x03), ISO-8859-5 (0x06), UCS2 (0x08, UTF-16BE); anything else,
// 8-bit data included, is taken as UTF-8. Bytes that do not decode become
// U+FFFD: the result is always valid UTF-8.
func decodeText(dc byte, b []byte) string {
	switch alphabet(dc) {
	case alphaGSM7:
		return decodeGSM7(b)
	case alphaASCII:
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
			if c >= 0x80 {
				r[i] = '\uFFFD'
			}
		}
		return string(r)
	case alphaLatin1:
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	case alphaCyrillic:
		return strings.ToValidUTF8(string(pdutext.ISO88595(b).Decode()), "\uFFFD")
	case alphaUCS2:
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		s := string(utf16.Decode(u)) // unpaired surrogates become U+FFFD
		if len(b)%2 == 1 {
			s += "\uFFFD"
		}
		return s
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

type alpha int

const (
	alphaOther alpha = iota // 8-bit data and the codings without a decoder here
	alphaGSM7
	alphaASCII
	alphaLatin1
	alphaCyrillic
	alphaUCS2
)

// alphabet reads a data_coding: SMPP's own values up to 0x0F, then the
// GSM 03.38 general (0x10–0x7F: bits 3..2) and message-class (0xF0–0xFF:
// bit 2) groups.
func alphabet(dc byte) alpha {
	switch {
	case dc == 0x00:
		return alphaGSM7
	case dc == 0x01:
		return alphaASCII
	case dc == 0x03:
		return alphaLatin1
	case dc == 0x06:
		return alphaCyrillic
	case dc == 0x08:
		return alphaUCS2
	case dc >= 0x10 && dc <= 0x7F:
		switch (dc >> 2) & 0x03 {
		case 0:
			return alphaGSM7
		case 2:
			return alphaUCS2
		}
	case dc >= 0xF0:
		if dc&0x04 == 0 {
			return alphaGSM7
		}
	}
	return alphaOther
}
