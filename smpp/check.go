package smpp

import "fmt"

// Limits of the bind credentials. SMPP 3.4 allows 15 characters of
// system_id and 8 of password; many SMSCs take passwords up to 16.
const (
	MaxSystemID = 15
	MaxPassword = 16
	// SMPPPassword is SMPP 3.4's own password limit: longer ones work with
	// many SMSCs but not all (a configuration warning, not an error).
	SMPPPassword = 8
)

// FieldProblem is one thing wrong with a CarrierOptions field, named by the
// configuration key it is set from ("window", "tps").
type FieldProblem struct {
	Key, Msg string
}

// Check lists what is wrong with o's carrier settings (the account, the
// mode, the binds and rates, the submit timeouts), so that a configuration
// file can report each at its place. Fields the config leaves at their
// zero value take the defaults (NewCarrier), except those that must be
// positive once defaulted (binds, burst, window).
func (o CarrierOptions) Check() []FieldProblem {
	var ps []FieldProblem
	add := func(key, format string, a ...any) { ps = append(ps, FieldProblem{key, fmt.Sprintf(format, a...)}) }
	if o.SystemID == "" {
		add("system_id", "missing")
	}
	if len(o.SystemID) > MaxSystemID {
		add("system_id", "longer than %d characters (SMPP 3.4)", MaxSystemID)
	}
	if len(o.Password) > MaxPassword {
		add("password", "longer than %d characters", MaxPassword)
	}
	if o.Mode != ModeTransceiver && o.Mode != ModeTransmitterReceiver {
		add("mode", "want %s or %s, got %q", ModeTransceiver, ModeTransmitterReceiver, o.Mode)
	}
	if o.Binds < 1 {
		add("binds", "must be at least 1")
	}
	if o.TPS < 0 {
		add("tps", "must not be negative")
	}
	if o.Burst < 1 {
		add("burst", "must be at least 1")
	}
	if o.Window < 1 {
		add("window", "must be at least 1")
	}
	if o.SubmitAckTimeout < 0 {
		add("submit_ack_timeout", "must not be negative")
	}
	return ps
}
