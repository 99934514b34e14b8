package smpp

import (
	"errors"
	"fmt"

	"github.com/fiorix/go-smpp/smpp/encoding"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
)

// Data codings and esm_class bits used for submit_sm.
const (
	DataCodingGSM7 byte = 0x00 // SMSC default alphabet, unpacked GSM 03.38 septets
	DataCodingUCS2 byte = 0x08 // UTF-16BE
	ESMClassUDHI   byte = 0x40 // short_message starts with a user data header
)

// Segment limits of one SMS, in septets (GSM7) or UTF-16 code units (UCS2).
const (
	gsm7Single   = 160
	gsm7Part     = 153 // 160 minus the 6-byte concatenation UDH (7 septets)
	ucs2Single   = 70
	ucs2Part     = 67 // 140 bytes minus the 6-byte UDH, in 2-byte units
	maxParts     = 255
	escapeSeptet = 0x1B
)

// ErrTextTooLong means a text needs more than 255 concatenated parts (or,
// in one message_payload, more than 65535 bytes).
var ErrTextTooLong = errors.New("smpp: text too long")

// Charsets an SMSC may read data_coding 0 as (a carrier's dcs0_charset).
// SMPP 3.4 leaves data_coding 0 to the SMSC's "default alphabet": most read
// GSM 03.38 septets, some Latin-1 or ASCII bytes.
const (
	CharsetGSM7   = "gsm7"   // GSM 03.38, one byte per septet (the default)
	CharsetLatin1 = "latin1" // ISO-8859-1, one byte per character
	CharsetASCII  = "ascii"  // IA5/ASCII, one byte per character
)

// Ways to send a text longer than one SMS (a carrier's long_messages).
const (
	LongUDH     = "udh"     // one submit_sm per part, each behind a concatenation UDH (the default)
	LongSAR     = "sar"     // one submit_sm per part, sar_* TLVs instead of a UDH
	LongPayload = "payload" // one submit_sm, the whole text in message_payload
)

// maxPayload is the largest message_payload: its TLV length is 16 bits.
const maxPayload = 0xFFFF

// EncodeOptions are a carrier's choices for EncodeWith. The zero value is
// GSM 03.38 for data_coding 0 and concatenation by UDH.
type EncodeOptions struct {
	// Charset is what the SMSC reads data_coding 0 as: CharsetGSM7 ("" too),
	// CharsetLatin1 or CharsetASCII.
	Charset string
	// Long is LongUDH ("" too), LongSAR or LongPayload.
	Long string
}

// Encoded is a text prepared for one or more submit_sm PDUs.
type Encoded struct {
	DataCoding byte     // DataCodingGSM7 (data_coding 0, whatever the charset) or DataCodingUCS2
	ESMClass   byte     // ESMClassUDHI when the parts carry a UDH, else 0
	Parts      [][]byte // short_message of each submit_sm, the UDH included; with LongPayload the one message_payload
	// Long is how the parts join (LongUDH, LongSAR or LongPayload); with
	// LongSAR and more than one part, each submit_sm carries the sar_* TLVs.
	Long string
	// Ref is the concatenation reference: sar_msg_ref_num, of which a UDH
	// carries the low byte.
	Ref uint16
}

// Encode is EncodeWith with the zero options (GSM 03.38, UDH) and an 8-bit
// reference.
func Encode(text string, ref byte) (Encoded, error) {
	return EncodeWith(text, uint16(ref), EncodeOptions{})
}

// EncodeWith encodes text with data_coding 0 when every character is in
// GSM 03.38 (with its extension table) and in opt.Charset (Latin-1: up to
// U+00FF; ASCII: printable ASCII, CR and LF), else as UCS2 (data_coding 8).
// With data_coding 0 the bytes are the charset's: unpacked septets,
// escaped characters taking two, for CharsetGSM7; one byte per character
// for the others. The SMSC turns them into GSM septets on the air, which
// is why a character must be in GSM 03.38 whatever the charset, and why
// lengths count septets.
//
// A text of at most 160 septets / 70 UCS2 units is one part. A longer one
// is split into parts of at most 153 septets / 67 units, never splitting
// an escape pair or a surrogate pair: with LongUDH each part starts with an
// 8-bit concatenation UDH (05 00 03 ref total seq); with LongSAR the parts
// carry no header (the SMSC adds one on the air, so they are no longer).
// With LongPayload the whole text is one part, for message_payload. ref
// identifies the concatenated message at the handset and should differ
// between consecutive long messages to a number. It returns ErrTextTooLong
// beyond 255 parts (65535 bytes with LongPayload), and an error for an
// unknown charset or method.
func EncodeWith(text string, ref uint16, opt EncodeOptions) (Encoded, error) {
	e := Encoded{Long: opt.Long, Ref: ref}
	if e.Long == "" {
		e.Long = LongUDH
	}
	if e.Long != LongUDH && e.Long != LongSAR && e.Long != LongPayload {
		return Encoded{}, fmt.Errorf("smpp: unknown long_messages %q", opt.Long)
	}
	charset := opt.Charset
	if charset == "" {
		charset = CharsetGSM7
	}
	fits, ok := dcs0Fits[charset]
	if !ok {
		return Encoded{}, fmt.Errorf("smpp: unknown dcs0_charset %q", opt.Charset)
	}
	var (
		body  []byte
		split []int
	)
	if len(encoding.ValidateGSM7String(text)) == 0 && fits(text) {
		e.DataCoding = DataCodingGSM7
		body = pdutext.GSM7(text).Encode()
		split = splitGSM7(body)
	} else {
		e.DataCoding = DataCodingUCS2
		body = pdutext.UCS2(text).Encode()
		split = splitUCS2(body)
	}
	// Cuts are found on septets; a charset of one byte per character gets
	// each part recoded.
	recode := func(b []byte) []byte { return b }
	if e.DataCoding == DataCodingGSM7 && charset != CharsetGSM7 {
		recode = recodeSeptets
	}
	if e.Long == LongPayload || len(split) == 0 {
		body = recode(body)
		if e.Long == LongPayload && len(body) > maxPayload {
			return Encoded{}, ErrTextTooLong
		}
		e.Parts = [][]byte{body}
		return e, nil
	}
	n := len(split) + 1
	if n > maxParts {
		return Encoded{}, ErrTextTooLong
	}
	udh := e.Long == LongUDH
	if udh {
		e.ESMClass = ESMClassUDHI
	}
	e.Parts = make([][]byte, 0, n)
	start := 0
	for i := 0; i < n; i++ {
		end := len(body)
		if i < len(split) {
			end = split[i]
		}
		chunk := recode(body[start:end])
		part := make([]byte, 0, 6+len(chunk))
		if udh {
			part = append(part, 0x05, 0x00, 0x03, byte(ref), byte(n), byte(i+1))
		}
		part = append(part, chunk...)
		e.Parts = append(e.Parts, part)
		start = end
	}
	return e, nil
}

// dcs0Fits reports, per charset, whether a text of GSM 03.38 characters
// can be written in it. The grave accent, the one printable ASCII
// character GSM 03.38 lacks, never gets this far.
var dcs0Fits = map[string]func(string) bool{
	CharsetGSM7: func(string) bool { return true },
	CharsetLatin1: func(s string) bool {
		for _, r := range s {
			if r > 0xFF {
				return false
			}
		}
		return true
	},
	CharsetASCII: func(s string) bool {
		for _, r := range s {
			if (r < 0x20 || r > 0x7E) && r != '\n' && r != '\r' {
				return false
			}
		}
		return true
	},
}

// recodeSeptets turns unpacked GSM septets of characters that all fit one
// byte (Latin-1 or ASCII, as dcs0Fits checked) into those bytes.
func recodeSeptets(septets []byte) []byte {
	text := pdutext.GSM7(septets).Decode()
	out := make([]byte, 0, len(septets))
	for _, r := range string(text) {
		out = append(out, byte(r))
	}
	return out
}

// splitGSM7 returns the offsets where body (unpacked septets) is cut, or
// nil when it fits one SMS. 0x1B appears in the output only as the escape
// prefix (no character and no extension code maps to it), so a cut right
// after it would separate the pair: cut one earlier instead.
func splitGSM7(body []byte) []int {
	if len(body) <= gsm7Single {
		return nil
	}
	var cuts []int
	start := 0
	for len(body)-start > gsm7Part {
		end := start + gsm7Part
		if body[end-1] == escapeSeptet {
			end--
		}
		cuts = append(cuts, end)
		start = end
	}
	return cuts
}

// splitUCS2 returns the offsets where body (UTF-16BE) is cut, or nil when it
// fits one SMS. A part never ends with a high surrogate.
func splitUCS2(body []byte) []int {
	if len(body) <= 2*ucs2Single {
		return nil
	}
	var cuts []int
	start := 0
	for len(body)-start > 2*ucs2Part {
		end := start + 2*ucs2Part
		if hi := body[end-2]; hi >= 0xD8 && hi <= 0xDB {
			end -= 2
		}
		cuts = append(cuts, end)
		start = end
	}
	return cuts
}
