package smpp

import (
	"errors"
	"fmt"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// SMPP command_status values this package acts on.
const (
	StatusOK         uint32 = 0x00000000 // ESME_ROK
	StatusInvCmdID   uint32 = 0x00000003 // ESME_RINVCMDID
	StatusSysErr     uint32 = 0x00000008 // ESME_RSYSERR
	StatusInvSrcAdr  uint32 = 0x0000000A // ESME_RINVSRCADR
	StatusInvDstAdr  uint32 = 0x0000000B // ESME_RINVDSTADR
	StatusBindFail   uint32 = 0x0000000D // ESME_RBINDFAIL
	StatusInvPaswd   uint32 = 0x0000000E // ESME_RINVPASWD
	StatusInvSysID   uint32 = 0x0000000F // ESME_RINVSYSID
	StatusMsgQFul    uint32 = 0x00000014 // ESME_RMSGQFUL
	StatusInvSrcTON  uint32 = 0x00000048 // ESME_RINVSRCTON
	StatusInvSrcNPI  uint32 = 0x00000049 // ESME_RINVSRCNPI
	StatusInvDstTON  uint32 = 0x00000050 // ESME_RINVDSTTON
	StatusInvDstNPI  uint32 = 0x00000051 // ESME_RINVDSTNPI
	StatusInvSysTyp  uint32 = 0x00000053 // ESME_RINVSYSTYP
	StatusThrottled  uint32 = 0x00000058 // ESME_RTHROTTLED
	StatusSubmitFail uint32 = 0x00000045 // ESME_RSUBMITFAIL
	StatusInvExpiry  uint32 = 0x00000062 // ESME_RINVEXPIRY: validity_period refused
	StatusUnknownErr uint32 = 0x000000FF // ESME_RUNKNOWNERR
)

var (
	// ErrNotBound means the carrier has no bound session that can transmit
	// (or it is shutting down). Submit returns it at once, never waiting for
	// a bind.
	ErrNotBound = errors.New("smpp: not bound")
	// ErrThrottled means the SMSC answered ESME_RTHROTTLED or ESME_RMSGQFUL,
	// or the carrier's token bucket could not give a token before the
	// caller's deadline. The message was not accepted; another carrier (or a
	// later try) may take it. A *StatusError with a throttling status also
	// matches it with errors.Is.
	ErrThrottled = errors.New("smpp: throttled")
	// ErrSessionLost means the session died while a submit was in flight.
	// Use errors.As with *SessionLostError to learn whether the submit was
	// written to the wire (and so may have reached the SMSC).
	ErrSessionLost = errors.New("smpp: session lost")
	// ErrNotReceipt means a deliver_sm or data_sm is not a delivery
	// receipt: neither its esm_class (type bits 0x04), nor a
	// receipted_message_id or message_state TLV, nor a receipt text says so.
	ErrNotReceipt = errors.New("smpp: not a delivery receipt")
)

// StatusError is a non-zero command_status the SMSC answered (in the
// response or in a generic_nack).
type StatusError struct {
	Status uint32
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("smpp: command status %#02x (%s)", e.Status, pdu.Status(e.Status).Error())
}

// Permanent reports whether the status says the destination number itself
// is wrong (ESME_RINVDSTADR): this carrier will never take it. The router
// still offers it to the route's other carriers and answers "invalid
// number" only when every one of them refused the number.
func (e *StatusError) Permanent() bool {
	return e.Status == StatusInvDstAdr
}

// Misconfigured reports whether the status says our settings are wrong for
// this carrier, not that the number is: an invalid source address or
// TON/NPI (0x0A, 0x48, 0x49), or destination TON/NPI (0x50, 0x51). The
// operator has to fix the carrier's source_ton/source_npi/dest_ton/dest_npi
// or the client's sender; meanwhile the next carrier takes the message.
func (e *StatusError) Misconfigured() bool {
	switch e.Status {
	case StatusInvSrcAdr, StatusInvSrcTON, StatusInvSrcNPI, StatusInvDstTON, StatusInvDstNPI:
		return true
	}
	return false
}

// Is makes a throttling status match ErrThrottled.
func (e *StatusError) Is(target error) bool {
	return target == ErrThrottled && (e.Status == StatusThrottled || e.Status == StatusMsgQFul)
}

// SessionLostError is the error of a request whose session died before
// the response came. Written reports whether any byte of the request was
// handed to the connection: true means the SMSC may have accepted it
// (ambiguous), false means it certainly did not reach the SMSC.
type SessionLostError struct {
	Written bool
	Cause   error
}

// Error implements error.
func (e *SessionLostError) Error() string {
	w := "not written"
	if e.Written {
		w = "written, outcome unknown"
	}
	if e.Cause != nil {
		return fmt.Sprintf("smpp: session lost (%s): %v", w, e.Cause)
	}
	return fmt.Sprintf("smpp: session lost (%s)", w)
}

// Is makes it match ErrSessionLost.
func (e *SessionLostError) Is(target error) bool { return target == ErrSessionLost }

// Unwrap returns the cause of the session's end.
func (e *SessionLostError) Unwrap() error { return e.Cause }

// ErrUnanswered means a request was handed to the connection and its
// context ended before the answer: the SMSC may have accepted it.
var ErrUnanswered = errors.New("smpp: no answer before the deadline")
