// Package daemon wires otpgate together and runs it: it loads and checks
// the configuration, opens the store, starts carriers (and simulators),
// serves the HTTP API, and drains everything on shutdown.
package daemon
