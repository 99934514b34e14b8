package daemon

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
)

// What goes into each submit_sm: the keys of carriers[] and clients[] that
// shape the PDU (addresses, validity, character set, concatenation, TLVs),
// their checks with paths, and their mapping onto smpp and otp.

// CustomText is an entry of a client's custom_texts: a template string, or
// a mapping {text, tlvs} whose TLVs go on every SMS with that text.
type CustomText struct {
	Text string
	TLVs map[string]string
}

// UnmarshalYAML reads either form, refusing unknown keys of the mapping.
func (t *CustomText) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Decode(&t.Text)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var err error
			switch k.Value {
			case "text":
				err = v.Decode(&t.Text)
			case "tlvs":
				err = v.Decode(&t.TLVs)
			default:
				return fmt.Errorf("line %d: custom text: unknown key %q (want text and tlvs)", k.Line, k.Value)
			}
			if err != nil {
				return fmt.Errorf("line %d: custom text %s: %w", v.Line, k.Value, err)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: custom text: want a string or {text, tlvs}", n.Line)
}

// autoPlan is the source_ton / source_npi value that lets otpgate choose.
const autoPlan = "auto"

// checkClientTLVs reports the problems of a client's tlvs, default_text_tlvs
// and custom_texts' tlvs (the texts themselves are checked by Validate).
func checkClientTLVs(p string, cl ClientConfig, add func(path, format string, a ...any)) {
	checkTLVs(p+".tlvs", cl.TLVs, add)
	for _, id := range sortedKeys(cl.DefaultTextTLVs) {
		tp := p + ".default_text_tlvs." + id
		if _, ok := otp.DefaultTemplates[id]; !ok {
			add(tp, "%q is not a default text (\"4\"..\"8\"): a custom text takes its tlvs in custom_texts", id)
			continue
		}
		checkTLVs(tp, cl.DefaultTextTLVs[id], add)
	}
	for _, id := range sortedKeys(cl.CustomTexts) {
		checkTLVs(p+".custom_texts."+id+".tlvs", cl.CustomTexts[id].TLVs, add)
	}
}

// checkTLVs reports each bad entry of a tlvs map at path.<tag>.
func checkTLVs(path string, m map[string]string, add func(path, format string, a ...any)) {
	seen := map[uint16]string{}
	for _, k := range sortedKeys(m) {
		t, err := smpp.ParseTLV(k, m[k])
		if err != nil {
			add(path+"."+k, "%s", strings.TrimPrefix(err.Error(), "smpp: "))
			continue
		}
		if other, dup := seen[t.Tag]; dup {
			add(path+"."+k, "same tag as %s", other)
			continue
		}
		seen[t.Tag] = k
	}
}

// checkCarrierSubmit reports the problems of a carrier's submit_sm keys.
func checkCarrierSubmit(p string, k CarrierConfig, add func(path, format string, a ...any)) {
	if _, err := parsePlan(k.SourceTON, smpp.MaxTON); err != nil {
		add(p+".source_ton", "%v", err)
	}
	if _, err := parsePlan(k.SourceNPI, smpp.MaxNPI); err != nil {
		add(p+".source_npi", "%v", err)
	}
	for _, f := range []struct {
		key      string
		v        *int
		min, max int
	}{{"dest_ton", k.DestTON, 0, smpp.MaxTON}, {"dest_npi", k.DestNPI, 0, smpp.MaxNPI},
		{"registered_delivery", k.RegisteredDelivery, 0, 255}} {
		if f.v != nil && (*f.v < f.min || *f.v > f.max) {
			add(p+"."+f.key, "want %d..%d, got %d", f.min, f.max, *f.v)
		}
	}
	if _, _, err := parseValidity(k.Validity); err != nil {
		add(p+".validity", "%v", err)
	}
	if k.ValidityFormat != "" && !oneOf(k.ValidityFormat, smpp.ValidityRelative, smpp.ValidityAbsolute) {
		add(p+".validity_format", "want %s or %s, got %q", smpp.ValidityRelative, smpp.ValidityAbsolute, k.ValidityFormat)
	}
	if k.DCS0Charset != "" && !oneOf(k.DCS0Charset, smpp.CharsetGSM7, smpp.CharsetLatin1, smpp.CharsetASCII) {
		add(p+".dcs0_charset", "want %s, %s or %s, got %q", smpp.CharsetGSM7, smpp.CharsetLatin1, smpp.CharsetASCII, k.DCS0Charset)
	}
	if k.LongMessages != "" && !oneOf(k.LongMessages, smpp.LongUDH, smpp.LongSAR, smpp.LongPayload) {
		add(p+".long_messages", "want %s, %s or %s, got %q", smpp.LongUDH, smpp.LongSAR, smpp.LongPayload, k.LongMessages)
	}
	if len(k.ServiceType) > smpp.MaxServiceType {
		add(p+".service_type", "longer than %d characters (SMPP 3.4)", smpp.MaxServiceType)
	} else if strings.IndexFunc(k.ServiceType, func(r rune) bool { return r < 0x21 || r > 0x7E }) >= 0 {
		add(p+".service_type", "want printable ASCII without spaces, got %q", k.ServiceType)
	}
	checkTLVs(p+".tlvs", k.TLVs, add)
}

// parsePlan reads source_ton / source_npi: "" or "auto" is nil (otpgate
// chooses), else a number from 0 to max.
func parsePlan(s string, max int) (*uint8, error) {
	if s == "" || s == autoPlan {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return nil, fmt.Errorf("want auto or 0..%d, got %q", max, s)
	}
	v := uint8(n)
	return &v, nil
}

// parseValidity reads validity: "" or "ttl", "none", or a positive
// duration.
func parseValidity(s string) (mode string, d time.Duration, err error) {
	switch s {
	case "", smpp.ValidityTTL:
		return smpp.ValidityTTL, 0, nil
	case smpp.ValidityNone:
		return smpp.ValidityNone, 0, nil
	}
	d, err = time.ParseDuration(s)
	if err != nil || d <= 0 {
		return "", 0, fmt.Errorf("want ttl, none or a positive duration like \"10m\", got %q", s)
	}
	return smpp.ValidityFixed, d, nil
}

// submitConfig maps a carrier's submit_sm keys onto cc.
func submitConfig(k CarrierConfig, cc *smpp.CarrierOptions) error {
	var err error
	if cc.SourceTON, err = parsePlan(k.SourceTON, smpp.MaxTON); err != nil {
		return fmt.Errorf("daemon: carrier %s: source_ton: %w", k.Name, err)
	}
	if cc.SourceNPI, err = parsePlan(k.SourceNPI, smpp.MaxNPI); err != nil {
		return fmt.Errorf("daemon: carrier %s: source_npi: %w", k.Name, err)
	}
	cc.DestTON, cc.DestNPI, cc.RegisteredDelivery = byteOf(k.DestTON), byteOf(k.DestNPI), byteOf(k.RegisteredDelivery)
	if cc.Validity, cc.ValidityPeriod, err = parseValidity(k.Validity); err != nil {
		return fmt.Errorf("daemon: carrier %s: validity: %w", k.Name, err)
	}
	cc.ValidityFormat, cc.DCS0Charset, cc.LongMessages = k.ValidityFormat, k.DCS0Charset, k.LongMessages
	cc.ServiceType = k.ServiceType
	if cc.TLVs, err = smpp.ParseTLVs(k.TLVs); err != nil {
		return fmt.Errorf("daemon: carrier %s: %w", k.Name, err)
	}
	return nil
}

// clientTLVs maps a client's tlvs, default_text_tlvs and custom texts'
// tlvs onto oc. Merge order, latest winning tag by tag: carrier, client,
// text.
func clientTLVs(c ClientConfig, oc *otp.Client) error {
	var err error
	if oc.TLVs, err = smpp.ParseTLVs(c.TLVs); err != nil {
		return fmt.Errorf("daemon: client %s: %w", c.ID, err)
	}
	add := func(id string, m map[string]string) error {
		if len(m) == 0 {
			return nil
		}
		t, err := smpp.ParseTLVs(m)
		if err != nil {
			return fmt.Errorf("daemon: client %s text %s: %w", c.ID, id, err)
		}
		if oc.TextTLVs == nil {
			oc.TextTLVs = map[string][]otp.TLV{}
		}
		oc.TextTLVs[id] = t
		return nil
	}
	for id, m := range c.DefaultTextTLVs {
		if err := add(id, m); err != nil {
			return err
		}
	}
	for id, ct := range c.CustomTexts {
		if err := add(id, ct.TLVs); err != nil {
			return err
		}
	}
	return nil
}

func byteOf(v *int) *uint8 {
	if v == nil {
		return nil
	}
	b := uint8(*v)
	return &b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
