package daemon

import (
	"fmt"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
)

// newInbox returns the MO handler: MO callbacks go on db's queue, routed
// by the client settings in force (initial until the service exists).
func (d *Server) newInbox(db otp.MOQueue, initial *otp.Settings) *otp.Inbox {
	in := otp.NewInbox(db, func() *otp.Settings {
		if svc := d.svc.Load(); svc != nil {
			return svc.Settings()
		}
		return initial
	}, d.log.With(keyComponent, "mo"))
	if m := d.Metrics; m != nil {
		in.Received = m.MO
	}
	return in
}

// inbound sets what a carrier needs for receipts and MO messages: the
// zone of its done dates and the MO handler. d.inbox must be set.
func (d *Server) inbound(kc CarrierConfig, cc *smpp.CarrierOptions) error {
	loc, err := receiptLocation(kc.ReceiptTimezone)
	if err != nil {
		return fmt.Errorf("daemon: carrier %s: receipt_timezone: %w", kc.Name, err)
	}
	cc.ReceiptLocation = loc
	if d.inbox != nil {
		cc.MO = d.inbox
	}
	return nil
}

// pendingDropped counts a receipt that matched nothing, dropped for the
// per-carrier cap of the store.
func (d *Server) pendingDropped(carrier string) {
	if m := d.Metrics; m != nil {
		m.Receipt(carrier, "dropped")
	}
}
