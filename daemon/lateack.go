package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
)

// Late acknowledgements: a submit_sm_resp that came after its send-otp
// gave up (409, outcome unknown) still names the message id the carrier's
// receipt will quote. The send stored its message without one; this gives
// it the id. They are rare, so one worker with a small queue serves all
// carriers.
const (
	lateAckQueue = 1024
	lateAckTries = 10                     // the message is saved right after its send returns
	lateAckRetry = 200 * time.Millisecond // between tries while it is not there yet
)

// lateAck queues a carrier's late acknowledgement; it runs on the SMPP
// reader and never blocks: with the queue full the id is dropped (its
// receipt will then match nothing) and that is logged.
func (d *Server) lateAck(a smpp.LateAck) {
	select {
	case d.lateAcks <- otp.Ack{RequestID: a.RequestID, Carrier: a.Carrier, MessageID: a.MessageID, Part: a.Part, Parts: a.Parts}:
	default:
		d.log.Warn("late submit ack dropped: queue full", keyCarrier, a.Carrier, keyRequestID, a.RequestID)
	}
}

// runLateAcks records queued late acknowledgements until ctx ends.
func (d *Server) runLateAcks(ctx context.Context, rs *otp.Receipts) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-d.lateAcks:
			err := rs.RecordLateAck(ctx, a)
			for try := 1; errors.Is(err, otp.ErrRequestNotFound) && try < lateAckTries; try++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(lateAckRetry):
				}
				err = rs.RecordLateAck(ctx, a)
			}
			if err != nil {
				d.log.Warn("late submit ack not recorded", keyCarrier, a.Carrier, keyRequestID, a.RequestID, keyError, err)
				continue
			}
			d.log.Info("late submit ack recorded", keyCarrier, a.Carrier, keyRequestID, a.RequestID, keyPart, a.Part)
		}
	}
}
