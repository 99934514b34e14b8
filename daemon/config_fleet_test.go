package daemon_test

import (
	"testing"
)

// TestValidate_Fleet: check-config's rules for the fleet: section.
func TestValidate_Fleet(t *testing.T) {
	c := fleetCerts(t)
	tlsKeys := `internal_tls: {cert_file: "` + c.CertFile + `", key_file: "` + c.KeyFile + `", ca_file: "` + c.CAFile + `"}`
	redis := "store: {backend: redis, redis: {addrs: [\"h:1\"]}}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"None", "", ""},
		{"BadgerWithInternal", "fleet: {internal_listen: \"127.0.0.1:7443\", " + tlsKeys + "}", "fleet.internal_listen: needs store.backend: redis"},
		{"Redis", redis + "fleet: {node_id: gw1, internal_listen: \"127.0.0.1:7443\", " + tlsKeys + ", bind_lease: 5s}", ""},
		{"RedisNoInternal", redis + "fleet: {node_id: gw1}", ""},
		{"NodeID", redis + "fleet: {node_id: \"gw#1\"}", "fleet.node_id: want at most 64 characters"},
		{"Lease", redis + "fleet: {node_id: gw1, bind_lease: 10m}", "fleet.bind_lease: want between 3s and 5m0s"},
		{"InternalNoTLS", redis + "fleet: {node_id: gw1, internal_listen: \"127.0.0.1:7443\"}", "fleet.internal_tls: cert_file, key_file and ca_file are all needed"},
		{"InternalBadAddr", redis + "fleet: {node_id: gw1, internal_listen: \"7443\", " + tlsKeys + "}", `fleet.internal_listen: want host:port, got "7443"`},
		{"TLSWithoutListen", redis + "fleet: {node_id: gw1, " + tlsKeys + "}", "fleet.internal_tls: set but fleet.internal_listen is empty"},
		{"BadCA", redis + "fleet: {node_id: gw1, internal_listen: \":7443\", internal_tls: {cert_file: \"" + c.CertFile +
			"\", key_file: \"" + c.KeyFile + "\", ca_file: \"" + c.KeyFile + "\"}}", "fleet.internal_tls.ca_file: no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, configYAML(t, cfgOpts{simAddr: "127.0.0.1:1"})+tt.yaml+"\n", tt.want)
		})
	}
}
