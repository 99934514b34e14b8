package store

// Log attribute keys of this package, in one place, so that every line
// names a thing the same way.
const (
	keyError = "error"
	keyKey   = "key"
)
