package otp

import (
	"context"
	"log/slog"
)

// Receipts records the delivery receipts carriers pass on. It is the
// handler the SMPP sessions call, kept apart from Service so that carriers
// can be built before the Service that sends through them.
type Receipts struct {
	store ReceiptStore
	log   *slog.Logger
	// Unmatched, when set, is called for each receipt that matched no
	// message when it arrived (kept pending for its message, or for an id
	// nobody sent): for a metric.
	Unmatched func(carrier string)
	// Failed, when set, is called with a message that a receipt just made
	// UNDELIVERABLE, EXPIRED or REJECTED, whether it came after its message
	// was saved (HandleReceipt) or before a late ack (RecordLateAck): for
	// Service.RetryFailed. It must not block.
	Failed func(Message)
}

// NewReceipts returns a receipt handler writing to store.
func NewReceipts(store ReceiptStore, logger *slog.Logger) *Receipts {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Receipts{store: store, log: logger}
}

// HandleReceipt records r. An error means it was not stored, and the
// carrier should be asked to send it again.
func (h *Receipts) HandleReceipt(ctx context.Context, r Receipt) error {
	msg, matched, changed, err := h.store.ApplyReceipt(ctx, r)
	if err != nil {
		return err
	}
	h.failed(msg, changed)
	if !matched {
		h.log.Debug("receipt matches no message yet: kept pending", keyCarrier, r.Carrier, keyMessageID, r.MessageID)
		if h.Unmatched != nil {
			h.Unmatched(r.Carrier)
		}
	}
	return nil
}

// RecordLateAck records a carrier's late acknowledgement
// (ReceiptStore.RecordLateAck). A failure receipt that came before it, kept
// pending and applied now, goes to Failed as HandleReceipt's would.
func (h *Receipts) RecordLateAck(ctx context.Context, a Ack) error {
	msg, changed, err := h.store.RecordLateAck(ctx, a)
	if err != nil {
		return err
	}
	h.failed(msg, changed)
	return nil
}

// failed hands msg to Failed when changed made it UNDELIVERABLE, EXPIRED or
// REJECTED.
func (h *Receipts) failed(msg Message, changed bool) {
	if !changed || h.Failed == nil {
		return
	}
	if st, _, _ := msg.Summary(); st.Failed() {
		h.Failed(msg)
	}
}
