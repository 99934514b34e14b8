package smpp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/otpgate/otpgate/otp"
)

// What a submit's validity_period says (a carrier's validity).
const (
	ValidityTTL   = "ttl"   // the code's remaining lifetime, up to otp.SMS.Expires (the default)
	ValidityFixed = "fixed" // CarrierOptions.ValidityPeriod from the submit
	ValidityNone  = "none"  // empty: the SMSC's own default
)

// Formats of validity_period (SMPP 3.4 §7.1.1; a carrier's validity_format).
const (
	// ValidityRelative is "YYMMDDhhmmss000R", a span from the SMSC's
	// receipt of the submit: right whatever either clock says (the default).
	ValidityRelative = "relative"
	// ValidityAbsolute is "YYMMDDhhmmsstnnp", a UTC instant ("00+").
	ValidityAbsolute = "absolute"
)

// Limits of submit_sm fields (SMPP 3.4 §5.2).
const (
	MaxServiceType = 5  // characters of service_type, its NUL excluded
	MaxTON         = 6  // largest type of number
	MaxNPI         = 18 // largest numbering plan indicator
)

// TON and NPI values otpgate chooses itself.
const (
	tonInternational uint8 = 1
	tonNational      uint8 = 2
	npiE164          uint8 = 1
)

// maxRelative is the longest relative validity_period this package writes:
// 99 days, the most its DD field holds without counting months. SMSCs cap
// validity well below it.
const maxRelative = 99*24*time.Hour + 23*time.Hour + 59*time.Minute + 59*time.Second

// reservedTLVs are the optional parameters this package sets itself, which
// a configured TLV must not override.
var reservedTLVs = map[uint16]string{
	uint16(pdutlv.TagSarMsgRefNum):     "sar_msg_ref_num",
	uint16(pdutlv.TagSarTotalSegments): "sar_total_segments",
	uint16(pdutlv.TagSarSegmentSeqnum): "sar_segment_seqnum",
	uint16(pdutlv.TagMessagePayload):   "message_payload",
}

// ParseTLV reads a configured TLV: tag as "0x" and one to four hex digits
// ("0x1400"), value as the string's bytes (no NUL added) or, after a
// "hex:" prefix, raw bytes in hex ("hex:0a0b"). It refuses the tags this
// package sets itself (sar_*, message_payload) and
// values longer than a TLV holds.
func ParseTLV(tag, value string) (otp.TLV, error) {
	digits, ok := strings.CutPrefix(strings.ToLower(tag), "0x")
	if !ok || len(digits) == 0 || len(digits) > 4 {
		return otp.TLV{}, fmt.Errorf("smpp: tlv tag %q: want 0x and 1 to 4 hex digits, like \"0x1400\"", tag)
	}
	n, err := strconv.ParseUint(digits, 16, 16)
	if err != nil {
		return otp.TLV{}, fmt.Errorf("smpp: tlv tag %q: want 0x and 1 to 4 hex digits, like \"0x1400\"", tag)
	}
	if name, ok := reservedTLVs[uint16(n)]; ok {
		return otp.TLV{}, fmt.Errorf("smpp: tlv tag %s is %s, which otpgate sets itself", tag, name)
	}
	v := []byte(value)
	if h, ok := strings.CutPrefix(value, "hex:"); ok {
		if v, err = hex.DecodeString(h); err != nil {
			return otp.TLV{}, fmt.Errorf("smpp: tlv %s: value after \"hex:\" is not an even number of hex digits", tag)
		}
	}
	if len(v) > math.MaxUint16 {
		return otp.TLV{}, fmt.Errorf("smpp: tlv %s: value longer than %d bytes", tag, math.MaxUint16)
	}
	return otp.TLV{Tag: uint16(n), Value: v}, nil
}

// ParseTLVs reads a map of configured TLVs (see ParseTLV) into a list
// sorted by tag. Two spellings of one tag ("0x14ab", "0x14AB") are an
// error.
func ParseTLVs(m map[string]string) ([]otp.TLV, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]otp.TLV, 0, len(m))
	seen := make(map[uint16]string, len(m))
	for _, k := range keys {
		t, err := ParseTLV(k, m[k])
		if err != nil {
			return nil, err
		}
		if other, dup := seen[t.Tag]; dup {
			return nil, fmt.Errorf("smpp: tlv tags %s and %s are the same", other, k)
		}
		seen[t.Tag] = k
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b otp.TLV) int { return int(a.Tag) - int(b.Tag) })
	return out, nil
}

// submitOptions is what a carrier's config says about its submit_sm PDUs,
// checked and defaulted once. Safe for concurrent use.
type submitOptions struct {
	srcTON, srcNPI *uint8 // nil: sourceAddr's rule
	dstTON, dstNPI uint8
	validity       string
	period         time.Duration
	absolute       bool
	enc            EncodeOptions
	registered     uint8
	serviceType    string
	tlvs           []otp.TLV // the carrier's, under the SMS's own

	// noValidity is set once the carrier answered ESME_RINVEXPIRY to a
	// submit with validity_period: later submits leave it out.
	noValidity atomic.Bool
}

// newSubmitOptions checks cfg's submit settings. On error it still returns
// usable options (the defaults where cfg is wrong), so that a carrier
// whose Run refuses the config fails no submit on a nil pointer.
func newSubmitOptions(cfg CarrierOptions) (*submitOptions, error) {
	o := &submitOptions{
		srcTON: cfg.SourceTON, srcNPI: cfg.SourceNPI,
		dstTON: tonInternational, dstNPI: npiE164,
		validity: cfg.Validity, period: cfg.ValidityPeriod,
		absolute:    cfg.ValidityFormat == ValidityAbsolute,
		enc:         EncodeOptions{Charset: cfg.DCS0Charset, Long: cfg.LongMessages},
		registered:  uint8(pdufield.FinalDeliveryReceipt),
		serviceType: cfg.ServiceType,
		tlvs:        cfg.TLVs,
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cfg.DestTON != nil {
		o.dstTON = *cfg.DestTON
	}
	if cfg.DestNPI != nil {
		o.dstNPI = *cfg.DestNPI
	}
	if cfg.RegisteredDelivery != nil {
		o.registered = *cfg.RegisteredDelivery
	}
	for _, p := range []struct {
		name string
		v    *uint8
		max  uint8
	}{{"source_ton", cfg.SourceTON, MaxTON}, {"source_npi", cfg.SourceNPI, MaxNPI},
		{"dest_ton", cfg.DestTON, MaxTON}, {"dest_npi", cfg.DestNPI, MaxNPI}} {
		if p.v != nil && *p.v > p.max {
			bad("%s %d: want 0..%d", p.name, *p.v, p.max)
		}
	}
	switch o.validity {
	case "":
		o.validity = ValidityTTL
	case ValidityTTL, ValidityNone:
	case ValidityFixed:
		if o.period <= 0 {
			bad("validity period %s: must be positive", o.period)
			o.validity = ValidityTTL
		}
	default:
		bad("validity %q: want %s, %s or %s", o.validity, ValidityTTL, ValidityFixed, ValidityNone)
		o.validity = ValidityTTL
	}
	if f := cfg.ValidityFormat; f != "" && f != ValidityRelative && f != ValidityAbsolute {
		bad("validity_format %q: want %s or %s", f, ValidityRelative, ValidityAbsolute)
	}
	if _, err := EncodeWith("", 0, o.enc); err != nil {
		errs = append(errs, err)
		o.enc = EncodeOptions{}
	}
	if len(o.serviceType) > MaxServiceType {
		bad("service_type %q: longer than %d characters", o.serviceType, MaxServiceType)
		o.serviceType = ""
	}
	for _, t := range o.tlvs {
		if name, ok := reservedTLVs[t.Tag]; ok {
			bad("tlv %#04x is %s, which otpgate sets itself", t.Tag, name)
		}
	}
	return o, errors.Join(errs...)
}

// outgoing is an SMS made ready for its submit_sm PDUs, once per Submit.
type outgoing struct {
	Encoded
	src, dst       string
	srcTON, srcNPI uint8
	expires        time.Time
	tlvs           []otp.TLV // the carrier's, then the SMS's over them
	requestID      string
}

// errNoCountryCode means a carrier sends national numbers (dest_ton 2) and
// the SMS does not say which part of the number is the country code.
var errNoCountryCode = errors.New("smpp: dest_ton 2 needs the number's country code")

// prepare encodes sms and works out the addresses and TLVs every part
// shares. ref is the concatenation reference (its low 16 bits are used).
func (c *Carrier) prepare(sms otp.SMS, ref uint32) (*outgoing, error) {
	o := c.sub
	enc, err := EncodeWith(sms.Text, uint16(ref), o.enc)
	if err != nil {
		return nil, err
	}
	m := &outgoing{Encoded: enc, expires: sms.Expires, requestID: sms.RequestID,
		tlvs: otp.MergeTLVs(o.tlvs, sms.TLVs)}
	m.srcTON, m.srcNPI, m.src = sourceAddr(sms.Source)
	if o.srcTON != nil {
		m.srcTON = *o.srcTON
	}
	if o.srcNPI != nil {
		m.srcNPI = *o.srcNPI
	}
	m.dst = digitsOnly(sms.To)
	if o.dstTON == tonNational {
		cc := digitsOnly(sms.CountryCode)
		if cc == "" || len(m.dst) <= len(cc) || !strings.HasPrefix(m.dst, cc) {
			return nil, errNoCountryCode
		}
		m.dst = m.dst[len(cc):]
	}
	return m, nil
}

// submitPart sends part i of m and waits for its response. A carrier that
// answers ESME_RINVEXPIRY to a submit with validity_period gets it once
// more without one, and from then on every submit leaves it out: one
// refusal is enough to learn that the carrier cannot take it, and paying
// two round trips per SMS would halve its throughput.
func (c *Carrier) submitPart(ctx context.Context, s *session, m *outgoing, i int, onLate func([]byte)) (string, error) {
	now := time.Now()
	vp := c.sub.validityPeriod(m.expires, now)
	id, err := submitPDU(ctx, s, c.sub.frame(m, i, vp), onLate)
	var se *StatusError
	if vp == "" || !errors.As(err, &se) || se.Status != StatusInvExpiry {
		return id, err
	}
	c.sub.noValidity.Store(true)
	warnLimited(c.log, c.logLim, slog.LevelWarn, "validity", "carrier refused validity_period, sending without it from now on",
		keyRequestID, m.requestID, keyValidity, vp)
	if err := c.pace.wait(ctx); err != nil {
		return "", err
	}
	return submitPDU(ctx, s, c.sub.frame(m, i, ""), onLate)
}

// submitPDU sends one submit_sm and waits for its response; a response
// that comes after ctx ended (or the send gave up on a stall) goes to
// onLate.
func submitPDU(ctx context.Context, s *session, submit []byte, onLate func([]byte)) (string, error) {
	frame, err := s.requestLate(ctx, submit, pdu.SubmitSMRespID, true, onLate)
	if err != nil {
		return "", err
	}
	id, status, _ := header(frame)
	if status != StatusOK {
		return "", &StatusError{Status: status}
	}
	if id != pdu.SubmitSMRespID {
		return "", fmt.Errorf("smpp: %w: %#08x with status 0", errUnexpectedReply, uint32(id))
	}
	mid, n := respMessageID(frame)
	if mid == "" {
		// Accepted all the same: the SMS is on its way, and an error would
		// have the router send it again. But no receipt can match it, so it
		// is kept without an id: its state stays ACCEPTED and a failure is
		// not retried.
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "submit accepted without a usable message_id: its receipt cannot be matched",
			keyLength, n)
	}
	return mid, nil
}

// respMessageID is the message_id of a submit_sm_resp frame, "" when it is
// blank or longer than SMPP's 64 characters (a receipt naming such an id
// is refused, and badger refuses index keys past 65,000 bytes); n is its
// length as sent.
func respMessageID(frame []byte) (id string, n int) {
	id = strings.TrimSpace(cString(frame[pdu.HeaderLen:]))
	if len(id) > MaxReceiptIDLen {
		return "", len(id)
	}
	return id, len(id)
}

// frame encodes the submit_sm of part i of m with validity_period vp
// (SMPP 3.4, 4.4.1), with sequence number 0: requestLate sets it. It
// writes the bytes go-smpp's SubmitSM would (the TLVs in a fixed order:
// m's, then the sar_* or message_payload ones), without its map of
// fields: a submit is on every send.
func (o *submitOptions) frame(m *outgoing, i int, vp string) []byte {
	part := m.Parts[i]
	n := pdu.HeaderLen + len(o.serviceType) + len(m.src) + len(m.dst) + len(vp) + 16 + len(part) + 3*5 + 4
	for _, t := range m.tlvs {
		n += 4 + len(t.Value)
	}
	b := make([]byte, pdu.HeaderLen, n)
	binary.BigEndian.PutUint32(b[4:], uint32(pdu.SubmitSMID))
	b = append(append(b, o.serviceType...), 0)
	b = append(b, m.srcTON, m.srcNPI)
	b = append(append(b, m.src...), 0)
	b = append(b, o.dstTON, o.dstNPI)
	b = append(append(b, m.dst...), 0)
	b = append(b, m.ESMClass, 0, 0, 0) // protocol_id, priority_flag, schedule_delivery_time ""
	b = append(append(b, vp...), 0)
	b = append(b, o.registered, 0, m.DataCoding, 0) // replace_if_present_flag, sm_default_msg_id
	sm := part
	if m.Long == LongPayload {
		sm = nil
	}
	b = append(append(b, uint8(len(sm))), sm...)
	for _, t := range m.tlvs {
		b = appendTLV(b, t.Tag, t.Value)
	}
	switch {
	case m.Long == LongPayload:
		b = appendTLV(b, uint16(pdutlv.TagMessagePayload), part)
	case m.Long == LongSAR && len(m.Parts) > 1:
		b = appendTLV(b, uint16(pdutlv.TagSarMsgRefNum), binary.BigEndian.AppendUint16(nil, m.Ref))
		b = appendTLV(b, uint16(pdutlv.TagSarTotalSegments), []byte{uint8(len(m.Parts))})
		b = appendTLV(b, uint16(pdutlv.TagSarSegmentSeqnum), []byte{uint8(i + 1)})
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// appendTLV appends a TLV: tag, length, value.
func appendTLV(b []byte, tag uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// validityPeriod returns the validity_period of a submit sent at now of an
// SMS that expires at expires, "" for none. It is never shorter than a
// second: an empty or zero period would mean the SMSC's default, the
// opposite of what a nearly expired code needs.
func (o *submitOptions) validityPeriod(expires, now time.Time) string {
	if o.noValidity.Load() {
		return ""
	}
	var d time.Duration
	switch o.validity {
	case ValidityNone:
		return ""
	case ValidityFixed:
		d = o.period
	default:
		if expires.IsZero() {
			return ""
		}
		d = expires.Sub(now)
	}
	d = max(d, time.Second)
	if o.absolute {
		return absoluteTime(now.Add(d))
	}
	return relativeTime(d)
}

// relativeTime formats d as a relative time, "YYMMDDhhmmss000R", rounded
// up to whole seconds and capped at maxRelative. Years and months stay 0:
// their length is not fixed.
func relativeTime(d time.Duration) string {
	d = min(d, maxRelative)
	secs := int64((d + time.Second - 1) / time.Second)
	days, secs := secs/86400, secs%86400
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, secs/3600, secs/60%60, secs%60)
}

// absoluteTime formats t as an absolute time in UTC, "YYMMDDhhmmsst00+",
// truncated to tenths of a second so that it is never later than t.
func absoluteTime(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%02d%02d%02d%02d%02d%02d%d00+", t.Year()%100, int(t.Month()), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e8)
}

// sourceAddr returns the TON, NPI and address of a sender id: an
// alphanumeric one is 5/0, up to 8 digits a short code 3/0, longer digits
// (or a leading '+') international 1/1.
func sourceAddr(src string) (ton, npi uint8, addr string) {
	src = strings.TrimSpace(src)
	digits := strings.TrimPrefix(src, "+")
	switch {
	case src == "":
		return 0, 0, ""
	case digits == "" || digitsOnly(digits) != digits:
		return 5, 0, src
	case len(digits) <= maxSourceShort && !strings.HasPrefix(src, "+"):
		return 3, 0, digits
	default:
		return 1, 1, digits
	}
}
