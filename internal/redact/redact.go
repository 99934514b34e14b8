// Package redact is what a secret type prints instead of its value.
package redact

import (
	"fmt"
	"io"
)

// Text is what a secret shows instead of its value.
const Text = "[REDACTED]"

// Format is the Format method of a secret type: Text for every fmt verb,
// as fmt would print a string (%d and %x included, which would otherwise
// print the value's bytes or digits), and goString for %#v.
func Format(f fmt.State, verb rune, goString string) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, goString)
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), Text)
}
