package otp_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// sickStore is the real store whose writes fail on demand (a full or
// broken disk is hard to provoke here; store and daemon tests do it on a
// real small tmpfs).
type sickStore struct {
	*store.DB
	failUpdate, failSave atomic.Bool
}

var errDisk = errors.New("disk full")

func (s *sickStore) UpdateOTP(ctx context.Context, key string, fn func(*otp.Record, bool) (otp.Change, error)) error {
	if s.failUpdate.Load() {
		return errDisk
	}
	return s.DB.UpdateOTP(ctx, key, fn)
}

func (s *sickStore) SaveSend(ctx context.Context, key string, m otp.Message, fn func(*otp.Record, bool)) (otp.Message, error) {
	if s.failSave.Load() {
		return otp.Message{}, errDisk
	}
	return s.DB.SaveSend(ctx, key, m, fn)
}

func sendReq(number string) otp.SendRequest {
	return otp.SendRequest{AuthClientID: client, ClientID: client, PhoneNumber: number, Channel: otp.Channel, CustomTextID: "6"}
}

// TestService_SickStore: the send is counted before the submit, so a store
// that cannot write costs no SMS, and a failure after the submit cannot
// leave the SMS uncounted.
func TestService_SickStore(t *testing.T) {
	var sick *sickStore
	h := newHarnessWrapped(t, otp.Policy{TTL: time.Minute, MaxAttempts: 5, ResendInterval: 30 * time.Second,
		MaxPerNumberPerHour: 5}, func(db *store.DB) otp.Store { sick = &sickStore{DB: db}; return sick })
	ctx := context.Background()

	t.Run("WritesFailNoSMS", func(t *testing.T) {
		sick.failUpdate.Store(true)
		defer sick.failUpdate.Store(false)
		for i := 0; i < 20; i++ {
			if _, err := h.svc.Send(ctx, sendReq("+91-9876543210")); !errors.Is(err, otp.ErrUnavailable) {
				t.Fatalf("send %d: got %v, want ErrUnavailable", i, err)
			}
		}
		if n := len(h.sim.Messages()); n != 0 {
			t.Fatalf("%d SMS reached the SMSC through a store that cannot write, want 0", n)
		}
		if err := h.verify("+91-9876543210", "123456"); !errors.Is(err, otp.ErrUnavailable) {
			t.Fatalf("verify: got %v, want ErrUnavailable", err)
		}
	})
	t.Run("SaveFailsStillCounted", func(t *testing.T) {
		sick.failSave.Store(true)
		_, err := h.svc.Send(ctx, sendReq("+91-9876543211"))
		sick.failSave.Store(false)
		if !errors.Is(err, otp.ErrUnavailable) {
			t.Fatalf("send: got %v, want ErrUnavailable", err)
		}
		if n := len(h.sim.Messages()); n != 1 {
			t.Fatalf("%d SMS, want the one submitted before the failed save", n)
		}
		// Within resend_interval: the SMS that went out is counted.
		if _, err := h.svc.Send(ctx, sendReq("+91-9876543211")); !errors.Is(err, otp.ErrResendTooSoon) {
			t.Fatalf("resend after a failed save: got %v, want ErrResendTooSoon", err)
		}
	})
	t.Run("NotSentGivenBack", func(t *testing.T) {
		// The only carrier refuses the number: nothing went out, and the
		// caller may try again at once.
		h.sim.SetSubmitStatus(0x0B)
		_, err := h.svc.Send(ctx, sendReq("+91-9876543212"))
		h.sim.SetSubmitStatus(0)
		if !errors.Is(err, otp.ErrInvalidNumber) {
			t.Fatalf("send: got %v, want ErrInvalidNumber", err)
		}
		h.send(t, "+91-9876543212") // not ErrResendTooSoon
	})
}
