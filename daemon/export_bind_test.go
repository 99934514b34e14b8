package daemon

import "github.com/otpgate/otpgate/smpp"

// SMPPConfig returns the smpp configuration the daemon makes of carrier k
// (at its own address, without an observer).
func SMPPConfig(k CarrierConfig) (smpp.CarrierOptions, error) {
	return carrierConfig(k, k.Address, nil)
}
