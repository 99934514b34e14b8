package redisstore

// Log attribute keys of this package, in one place, so that every line
// names a thing the same way.
const (
	keyCarrier = "carrier"
	keyError   = "error"
	keyID      = "id"
)
