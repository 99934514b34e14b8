package guard

// Log messages and attribute keys, in one place. Ranges are logged masked
// ("+91-987650xxxx"), never a number.
const (
	logRaised      = "guard raised a block"
	logRefused     = "guard refused sends"
	logWouldRefuse = "guard would refuse sends (monitor mode)"
	logBudget      = "guard budget spent"
	logRecovered   = "guard lifted a block: the range converts again"
	logReleased    = "guard block released"
	logDropped     = "guard block dropped by the new configuration"

	keyRule       = "rule"
	keyRange      = "range"
	keyClient     = "client"
	keyCarrier    = "carrier"
	keyAction     = "action"
	keyReason     = "reason"
	keyScope      = "scope"
	keyUntil      = "until"
	keySince      = "since"
	keyRefused    = "refused"
	keySends      = "sends"
	keySequential = "sequential"
	keyBaseline   = "baseline"
	keyJudged     = "judged"
	keyVerified   = "verified"
	keyWhy        = "why"
)

// Shared state (fleet backend).
const (
	logSharedFailed = "guard shared state unavailable: deciding on this node's own"
	logLifted       = "guard block lifted on another node"

	keyOp    = "op"
	keyError = "error"
)
