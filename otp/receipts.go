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
	// UNDELIVERABLE, EXPIRED or REJECTED (for Service.RetryFailed). It must
	// not block.
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
	if changed && h.Failed != nil {
		if st, _, _ := msg.Summary(); st.Failed() {
			h.Failed(msg)
		}
	}
	if !matched {
		h.log.Debug("receipt matches no message yet: kept pending", keyCarrier, r.Carrier, keyMessageID, r.MessageID)
		if h.Unmatched != nil {
			h.Unmatched(r.Carrier)
		}
	}
	return nil
}
