package otp

// Log attribute keys of this package, in one place, so that every line
// names a thing the same way.
const (
	keyCarrier       = "carrier"
	keyError         = "error"
	keyFailedCarrier = "failed_carrier"
	keyFrom          = "from"
	keyLength        = "length"
	keyMessageID     = "message_id"
	keyNumber        = "number"
	keyRequestID     = "request_id"
	keyTo            = "to"
)
