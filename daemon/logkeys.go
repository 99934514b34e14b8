package daemon

// Log attribute keys of this package, in one place, so that every line
// names a thing the same way.
const (
	keyAdminListen    = "admin_listen"
	keyCarrier        = "carrier"
	keyCarriers       = "carriers"
	keyChanged        = "changed"
	keyClients        = "clients"
	keyComponent      = "component"
	keyCPUs           = "cpus"
	keyDataDir        = "data_dir"
	keyError          = "error"
	keyGOMAXPROCS     = "gomaxprocs"
	keyInternalListen = "internal_listen"
	keyLimit          = "limit"
	keyNode           = "node"
	keyNodes          = "nodes"
	keySkew           = "skew"
	keySlot           = "slot"
	keyListen         = "listen"
	keyOldest         = "oldest"
	keyPart           = "part"
	keyPath           = "path"
	keyPprof          = "pprof"
	keyReason         = "reason"
	keyRemote         = "remote"
	keyRequestID      = "request_id"
	keyRequests       = "requests"
	keyRoutes         = "routes"
	keyWarning        = "warning"
)
