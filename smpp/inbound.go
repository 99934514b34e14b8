package smpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/otpgate/otpgate/otp"
)

// Statuses of our deliver_sm_resp and data_sm_resp.
const (
	// StatusInvCmdLen (ESME_RINVCMDLEN) answers, in a generic_nack, a
	// deliver_sm or data_sm whose body ends inside its mandatory fields.
	StatusInvCmdLen uint32 = 0x00000002
	// StatusInvMsgID (ESME_RINVMSGID) refuses a receipt whose message id
	// is longer than MaxReceiptIDLen: no submit_sm_resp of ours can have
	// given it (SMPP 3.4 allows 64 characters), and storing it would let a
	// broken carrier grow the index without bound. The error is not
	// temporary: the SMSC should not send that receipt again.
	StatusInvMsgID uint32 = 0x0000000C
	// StatusRxTApp (ESME_RX_T_APPN, "ESME receiver temporary app error")
	// answers a receipt or MO that cannot be stored now: the store failed,
	// or the session's queue is full. Unlike ESME_RSYSERR, SMSCs read it as
	// "try again later" and resend.
	StatusRxTApp uint32 = 0x00000064
)

// MaxReceiptIDLen is the longest receipted message id accepted (SMPP 3.4
// message_id: 64 characters and a NUL).
const MaxReceiptIDLen = 64

// MOHandler takes the MO messages (deliver_sm or data_sm that are not
// delivery receipts) a carrier's sessions receive. HandleMO runs on the
// session's receipt workers, never on its reader; the response goes out
// after it returns: ESME_ROK on nil, ESME_RX_T_APPN (0x64) on an error so
// that the SMSC sends the MO again. It must return well within 30 s.
type MOHandler interface {
	HandleMO(ctx context.Context, m otp.MO) error
}

// MOHandlerFunc adapts a function to MOHandler.
type MOHandlerFunc func(ctx context.Context, m otp.MO) error

// HandleMO calls f.
func (f MOHandlerFunc) HandleMO(ctx context.Context, m otp.MO) error { return f(ctx, m) }

// receiptJob is a receipt or an MO waiting for its handler; its response
// (resp, with seq) is written once the handler returns.
type receiptJob struct {
	resp pdu.ID // pdu.DeliverSMRespID or pdu.DataSMRespID
	seq  uint32
	isMO bool
	r    otp.Receipt // when !isMO
	mo   otp.MO      // when isMO
}

// inboundResp is the response command of id, a deliver_sm or data_sm.
func inboundResp(id pdu.ID) pdu.ID {
	if id == pdu.DataSMID {
		return pdu.DataSMRespID
	}
	return pdu.DeliverSMRespID
}

// deliver handles a deliver_sm or data_sm on the reader goroutine: it
// reads it, tells a receipt from an MO, and queues either for the workers,
// which answer after the handler. What cannot be queued now is answered at
// once with ESME_RX_T_APPN: the reader never waits for a handler.
func (s *session) deliver(id pdu.ID, seq uint32, frame []byte) {
	resp := inboundResp(id)
	in, err := parseInbound(id, frame[pdu.HeaderLen:])
	if err != nil {
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "undecodable deliver_sm or data_sm", keyCommandID, commandHex(id), keyError, err, keySeq, seq)
		s.nack(seq, StatusInvCmdLen)
		return
	}
	if in.badTLV {
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "broken tlv stream: tlvs before it kept", keyCommandID, commandHex(id), keySeq, seq)
	}
	now := time.Now()
	r, stat, err := parseReceipt(in.esmClass, in.shortMessage, in.tlvs, now, s.cfg.ReceiptLocation)
	switch {
	case errors.Is(err, ErrNotReceipt):
		s.deliverMO(in, resp, seq, now)
		return
	case err != nil:
		// Never log the text: it quotes the start of the message, the code.
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "unparsable receipt acked", keyCommandID, commandHex(id), keyError, err, keySeq, seq, keyLength, len(in.text()))
		s.respond(resp, seq, StatusOK)
		return
	case len(r.MessageID) > MaxReceiptIDLen:
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "receipt id too long: refused", keyCommandID, commandHex(id), keySeq, seq, keyLength, len(r.MessageID))
		s.cfg.Observer.Receipt(s.cfg.Carrier, "refused")
		s.respond(resp, seq, StatusInvMsgID)
		return
	}
	if stat != "" {
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "receipt stat unknown: message kept in flight", keyStat, printable(stat, 16), keySeq, seq)
	}
	r.Carrier = s.cfg.Carrier
	r.Exact = s.cfg.Recent.exact(r.MessageID, now)
	s.cfg.Observer.Receipt(s.cfg.Carrier, string(r.State))
	s.enqueue(receiptJob{resp: resp, seq: seq, r: r})
}

// commandHex names a command id for a log line, as 0x00000005.
func commandHex(id pdu.ID) string { return fmt.Sprintf("%#08x", uint32(id)) }

// deliverMO queues an MO for the MO handler, or acks it when there is none.
func (s *session) deliverMO(in inboundPDU, resp pdu.ID, seq uint32, now time.Time) {
	text := in.text()
	if in.esmClass&ESMClassUDHI != 0 {
		if _, rest, ok := splitUDH(text); ok {
			text = rest
		}
	}
	if s.cfg.MO == nil {
		s.log.Debug("mo acked unhandled", keySeq, seq, keyLength, len(text))
		s.respond(resp, seq, StatusOK)
		return
	}
	m := otp.MO{Carrier: s.cfg.Carrier, From: in.src, FromTON: in.srcTON, To: in.dst,
		Text: decodeText(in.dataCoding, text), ReceivedAt: now.UTC()}
	s.enqueue(receiptJob{resp: resp, seq: seq, isMO: true, mo: m})
}

// enqueue hands j to the workers without waiting.
func (s *session) enqueue(j receiptJob) {
	select {
	case s.receipts <- j:
	default: // full, or a transmitter bind that was sent a deliver_sm
		warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "inbound queue full: smsc will resend", keySeq, j.seq)
		s.respond(j.resp, j.seq, StatusRxTApp)
	}
}

// respond writes a deliver_sm_resp or data_sm_resp.
func (s *session) respond(resp pdu.ID, seq, status uint32) {
	s.sendFrame(encodeResp(resp, status, seq))
}

// receiptLoop runs the handler for one receipt or MO at a time and answers
// afterwards; receiptWorkers of them share a session's queue, so that a
// store that commits writes in groups sees many at once. What is still
// queued when the session dies is never answered, so the SMSC delivers it
// again on another bind.
func (s *session) receiptLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.dead:
			return
		case j := <-s.receipts:
			ctx, cancel := context.WithTimeout(s.hctx, handlerTimeout)
			var err error
			switch {
			case j.isMO && s.cfg.MO != nil:
				if err = s.cfg.MO.HandleMO(ctx, j.mo); err != nil {
					warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "mo handler failed: smsc will resend", keyError, err)
				}
			case !j.isMO && s.cfg.Handler != nil:
				if err = s.cfg.Handler.HandleReceipt(ctx, j.r); err != nil {
					warnLimited(s.log, s.cfg.LogLimit, slog.LevelWarn, "", "receipt handler failed: smsc will resend", keyError, err, keyMessageID, j.r.MessageID)
				}
			}
			cancel()
			status := StatusOK
			if err != nil {
				status = StatusRxTApp
			}
			s.respond(j.resp, j.seq, status)
		}
	}
}

// printable returns at most n bytes of s with digits replaced by '#' and
// anything else but ASCII letters and '_' by '?', for logging a word a
// carrier sent: a stat word has no digits, and a carrier that put the
// SMS's text there must not put its code in the log.
func printable(s string, n int) string {
	b := []byte(s[:min(len(s), n)])
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			b[i] = '#'
		case !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'):
			b[i] = '?'
		}
	}
	return string(b)
}
