package smpp

import (
	"io"
	"log/slog"
)

// Log attribute keys, in one place.
const (
	keyComponent = "component"
	keyCarrier   = "carrier"
	keyBind      = "bind"
	keySlot      = "slot"
	keyError     = "error"
	keyCommandID = "command_id"
	keySeq       = "seq"
	keyLength    = "length"
	keyMessageID = "message_id"
	keyTimeout   = "timeout"
	keyRequestID = "request_id"
	keyTo        = "to"
	keyText      = "text"
	keyParts     = "parts"
	keyRetries   = "failures"
	keyBackoff   = "backoff"
	keyAddress   = "address"
	keyRoute     = "route"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// maskNumber keeps the first two and last two digits of a number.
func maskNumber(n string) string {
	if len(n) <= 4 {
		return "****"
	}
	b := []byte(n)
	for i := 2; i < len(b)-2; i++ {
		b[i] = '*'
	}
	return string(b)
}
