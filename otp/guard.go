package otp

import (
	"fmt"
	"time"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/phone"
)

// The pumping guard's hooks on the send and verify paths: admit before a
// send is reserved, sent or unsent once its fate is known, converted after
// a verification.

// admit asks the guard whether a send of clientID to num may go out at
// now: ErrGuarded (wrapping the guard's refusal) when it may not.
func (s *Service) admit(now time.Time, clientID string, num phone.Number) (guard.Ticket, error) {
	if s.guard == nil {
		return guard.Ticket{}, nil
	}
	t, err := s.guard.Admit(now, guard.Send{Client: clientID, Country: num.Country, CC: num.CC, National: num.National})
	if err != nil {
		return t, fmt.Errorf("%w: %w", ErrGuarded, err)
	}
	return t, nil
}

// sent tells the guard that carrier took the SMS of t ("" when it may have).
func (s *Service) sent(t guard.Ticket, carrier string) {
	if s.guard != nil {
		s.guard.Sent(t, carrier)
	}
}

// unsent tells the guard that the SMS of t certainly did not go out.
func (s *Service) unsent(t guard.Ticket) {
	if s.guard != nil {
		s.guard.Unsent(t)
	}
}

// conversion is what the guard learns from a verification.
type conversion struct {
	at, sentAt time.Time
	carrier    string
}

// converted tells the guard that clientID's code to num was verified.
func (s *Service) converted(clientID string, num phone.Number, c conversion) {
	if s.guard == nil || c.at.IsZero() {
		return
	}
	s.guard.Verified(c.at, guard.Verification{Client: clientID, Country: num.Country, CC: num.CC,
		National: num.National, SentAt: c.sentAt, Carrier: c.carrier})
}
