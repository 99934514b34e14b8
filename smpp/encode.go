package smpp

import (
	"errors"

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

// ErrTextTooLong means a text needs more than 255 concatenated parts.
var ErrTextTooLong = errors.New("smpp: text too long")

// Encoded is a text prepared for one or more submit_sm PDUs.
type Encoded struct {
	DataCoding byte     // DataCodingGSM7 or DataCodingUCS2
	ESMClass   byte     // ESMClassUDHI when the text was split, else 0
	Parts      [][]byte // short_message of each submit_sm, the UDH included when split
}

// Encode encodes text as GSM7 (data_coding 0, one byte per septet, escaped
// characters taking two) when every character is in GSM 03.38 with its
// extension table, else as UCS2 (data_coding 8). A text of at most 160
// septets / 70 UCS2 units is one part with no UDH; a longer one is split
// into parts of at most 153 septets / 67 units, each behind an 8-bit
// concatenation UDH (05 00 03 ref total seq), never splitting an escape
// pair or a surrogate pair. ref identifies the concatenated message at the
// handset and should differ between consecutive long messages to a number.
// It returns ErrTextTooLong beyond 255 parts.
func Encode(text string, ref byte) (Encoded, error) {
	var (
		e     Encoded
		body  []byte
		split []int
	)
	if len(encoding.ValidateGSM7String(text)) == 0 {
		e.DataCoding = DataCodingGSM7
		body = pdutext.GSM7(text).Encode()
		split = splitGSM7(body)
	} else {
		e.DataCoding = DataCodingUCS2
		body = pdutext.UCS2(text).Encode()
		split = splitUCS2(body)
	}
	if len(split) == 0 {
		e.Parts = [][]byte{body}
		return e, nil
	}
	n := len(split) + 1
	if n > maxParts {
		return Encoded{}, ErrTextTooLong
	}
	e.ESMClass = ESMClassUDHI
	e.Parts = make([][]byte, 0, n)
	start := 0
	for i := 0; i < n; i++ {
		end := len(body)
		if i < len(split) {
			end = split[i]
		}
		part := make([]byte, 0, 6+end-start)
		part = append(part, 0x05, 0x00, 0x03, ref, byte(n), byte(i+1))
		part = append(part, body[start:end]...)
		e.Parts = append(e.Parts, part)
		start = end
	}
	return e, nil
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
