package otp

import (
	"fmt"
	"strings"
)

// Template is an SMS text with one run of '#' that the code replaces; the
// run's length is the code's length.
type Template struct {
	prefix, suffix string
	length         int
	masked         string // the text with '*' for the code, made once: it goes with every send
}

// MaxCodeLength is the longest code a template may ask for.
const MaxCodeLength = 8

// ParseTemplate checks that text has exactly one run of 1 to MaxCodeLength
// '#' characters and returns the template.
func ParseTemplate(text string) (Template, error) {
	i := strings.IndexByte(text, '#')
	if i < 0 {
		return Template{}, fmt.Errorf("otp: template has no '#'")
	}
	j := i
	for j < len(text) && text[j] == '#' {
		j++
	}
	if strings.IndexByte(text[j:], '#') >= 0 {
		return Template{}, fmt.Errorf("otp: template has more than one run of '#'")
	}
	if j-i > MaxCodeLength {
		return Template{}, fmt.Errorf("otp: template has %d '#', at most %d", j-i, MaxCodeLength)
	}
	return Template{prefix: text[:i], suffix: text[j:], length: j - i, masked: text[:i] + strings.Repeat("*", j-i) + text[j:]}, nil
}

// Length is the number of digits of the code.
func (t Template) Length() int { return t.length }

// Render returns the text with the code in place of the '#' run.
func (t Template) Render(code Code) string { return t.prefix + code.Reveal() + t.suffix }

// Masked returns the text with '*' in place of the code, for logs.
func (t Template) Masked() string { return t.masked }

// DefaultTemplates are the vendor API's texts for customTextId "4" to "8"
// (docs/architecture.md, "The vendor API").
var DefaultTemplates = func() map[string]Template {
	m := make(map[string]Template, 5)
	for n := 4; n <= 8; n++ {
		t, err := ParseTemplate("Your OTP for verification is " + strings.Repeat("#", n))
		if err != nil {
			panic(err) // constant input
		}
		m[fmt.Sprint(n)] = t
	}
	return m
}()
