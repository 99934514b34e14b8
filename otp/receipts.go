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
	_, matched, _, err := h.store.ApplyReceipt(ctx, r)
	if err != nil {
		return err
	}
	if !matched {
		h.log.Debug("receipt before its message", "carrier", r.Carrier, "message_id", r.MessageID)
	}
	return nil
}
