package callback

// Log attribute keys of this package, in one place, so that every line
// names a thing the same way.
const (
	keyAttempt   = "attempt"
	keyAttempts  = "attempts"
	keyClient    = "client"
	keyError     = "error"
	keyFailures  = "failures"
	keyHost      = "host"
	keyKind      = "kind"
	keyProbeIn   = "probe_in"
	keyQueuedAt  = "queued_at"
	keyRequestID = "request_id"
	keyState     = "state"
)
