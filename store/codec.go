package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// Binary values.
//
// The values written on every send and receipt (records, messages and the
// id index) are a compact binary encoding rather than JSON: encoding/json
// was a tenth of the gateway's CPU per send (reflection and allocations),
// and the values are about half as long, which keeps badger's memtables,
// tables and compactions smaller. A value starts with codecV1; JSON always
// starts with '{', so the values written by earlier versions are still
// read (as JSON) and replaced by binary ones as they are rewritten. The
// other values (pending receipts, callbacks, the heartbeat) stay JSON:
// they are rare.
//
// Layout after the version byte: integers are unsigned varints (a signed
// one zig-zagged), strings and byte slices a varint length then the bytes,
// a time 0 for the zero time or 1 then its UnixNano as a signed varint, a
// slice its length then its elements. Decoded times are in UTC.

// codecV1 starts every binary value.
const codecV1 = 0x01

// errCorrupt is the error of a binary value that ends early or holds an
// impossible length.
var errCorrupt = errors.New("corrupt binary value")

// marshalValue encodes v: binary for *otp.Record, *otp.Message and
// *indexEntry (and their values), JSON for anything else.
func marshalValue(v any) ([]byte, error) {
	switch x := v.(type) {
	case *otp.Record:
		return appendRecord(make([]byte, 0, 128), x), nil
	case otp.Record:
		return appendRecord(make([]byte, 0, 128), &x), nil
	case *otp.Message:
		return appendMessage(make([]byte, 0, 160), x), nil
	case otp.Message:
		return appendMessage(make([]byte, 0, 160), &x), nil
	case *indexEntry:
		return appendIndex(make([]byte, 0, 32), x), nil
	case indexEntry:
		return appendIndex(make([]byte, 0, 32), &x), nil
	}
	return json.Marshal(v)
}

// unmarshalValue decodes b into v (a pointer), reading either encoding.
func unmarshalValue(b []byte, v any) error {
	if len(b) == 0 || b[0] != codecV1 {
		return json.Unmarshal(b, v)
	}
	d := decoder{b: b[1:]}
	switch x := v.(type) {
	case *otp.Record:
		d.record(x)
	case *otp.Message:
		d.message(x)
	case *indexEntry:
		d.index(x)
	default:
		return errors.New("binary value for a type without a binary encoding")
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	return d.err
}

func appendRecord(b []byte, r *otp.Record) []byte {
	b = append(b, codecV1)
	b = appendBytes(b, r.CodeHash)
	b = appendTime(b, r.ExpiresAt)
	b = appendString(b, r.RequestID)
	b = binary.AppendVarint(b, int64(r.Attempts))
	b = appendTime(b, r.LastFailAt)
	b = binary.AppendUvarint(b, uint64(len(r.Sends)))
	for _, t := range r.Sends {
		b = appendTime(b, t)
	}
	b = binary.AppendVarint(b, int64(r.DayFails))
	b = appendTime(b, r.DayStart)
	b = appendString(b, r.Carrier)
	return appendTime(b, r.KeepUntil)
}

func appendMessage(b []byte, m *otp.Message) []byte {
	b = append(b, codecV1)
	b = appendString(b, m.RequestID)
	b = appendString(b, m.ClientID)
	b = appendString(b, m.Number)
	b = appendString(b, m.Display)
	b = appendString(b, m.Carrier)
	b = appendParts(b, m.Parts)
	b = appendTime(b, m.SubmittedAt)
	if m.Verified {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Earlier)))
	for _, a := range m.Earlier {
		b = appendString(b, a.Carrier)
		b = appendParts(b, a.Parts)
		b = appendTime(b, a.SubmittedAt)
	}
	return b
}

func appendParts(b []byte, ps []otp.Part) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.MessageID)
		b = appendString(b, string(p.State))
		b = appendString(b, p.Error)
		b = appendTime(b, p.DoneAt)
	}
	return b
}

func appendIndex(b []byte, ie *indexEntry) []byte {
	b = append(b, codecV1)
	b = appendString(b, ie.RequestID)
	return binary.AppendVarint(b, int64(ie.Part))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), t.UnixNano())
}

// decoder reads a binary value; the first error sticks and makes every
// later read return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) record(r *otp.Record) {
	*r = otp.Record{}
	r.CodeHash = d.bytes()
	r.ExpiresAt = d.time()
	r.RequestID = d.string()
	r.Attempts = d.int()
	r.LastFailAt = d.time()
	if n := d.count(); n > 0 {
		r.Sends = make([]time.Time, n)
		for i := range r.Sends {
			r.Sends[i] = d.time()
		}
	}
	r.DayFails = d.int()
	r.DayStart = d.time()
	r.Carrier = d.string()
	r.KeepUntil = d.time()
}

func (d *decoder) message(m *otp.Message) {
	*m = otp.Message{}
	m.RequestID = d.string()
	m.ClientID = d.string()
	m.Number = d.string()
	m.Display = d.string()
	m.Carrier = d.string()
	m.Parts = d.parts()
	m.SubmittedAt = d.time()
	m.Verified = d.byte() == 1
	if n := d.count(); n > 0 {
		m.Earlier = make([]otp.Attempt, n)
		for i := range m.Earlier {
			m.Earlier[i].Carrier = d.string()
			m.Earlier[i].Parts = d.parts()
			m.Earlier[i].SubmittedAt = d.time()
		}
	}
}

func (d *decoder) parts() []otp.Part {
	n := d.count()
	if n == 0 {
		return nil
	}
	ps := make([]otp.Part, n)
	for i := range ps {
		ps[i].MessageID = d.string()
		ps[i].State = otp.State(d.string())
		ps[i].Error = d.string()
		ps[i].DoneAt = d.time()
	}
	return ps
}

func (d *decoder) index(ie *indexEntry) {
	ie.RequestID = d.string()
	ie.Part = d.int()
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || v < math.MinInt32 || v > math.MaxInt32 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

// count reads a slice length; each element takes at least one byte, so a
// length beyond the bytes left is corrupt (and never allocated).
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func (d *decoder) raw() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.raw()) }

// bytes copies: badger's value buffer is only valid inside item.Value.
func (d *decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) time() time.Time {
	if d.byte() == 0 || d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return time.Time{}
	}
	d.b = d.b[n:]
	return time.Unix(0, v).UTC()
}
