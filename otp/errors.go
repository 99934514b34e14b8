package otp

import (
	"errors"
	"fmt"
)

// Domain errors. The api package maps each one to the documented HTTP body;
// adapters translate their library errors into these at their edge.
var (
	// ErrInvalidNumber means the phone number cannot be parsed, its country is
	// unsupported, its length is out of range, the client may not send to its
	// country, or the carrier rejected the destination permanently.
	ErrInvalidNumber = errors.New("otp: mobile number is not valid/allowed")
	// ErrCustomerNotFound means the clientId is unknown or belongs to another key.
	ErrCustomerNotFound = errors.New("otp: customer not found")
	// ErrCustomTextNotFound means the customTextId is not defined for the client.
	ErrCustomTextNotFound = errors.New("otp: custom text does not exist")
	// ErrBlocked means the number is on the block list.
	ErrBlocked = errors.New("otp: blocked phone number")
	// ErrUpstreamDown means no carrier of the route could take the message in time.
	ErrUpstreamDown = errors.New("otp: upstream down")
	// ErrUnprocessable means a request is well-formed JSON but not acceptable
	// (a missing field, a wrong type, an unknown channel).
	ErrUnprocessable = errors.New("otp: unprocessable entity")
	// ErrInvalidOTP means the code did not match.
	ErrInvalidOTP = errors.New("otp: invalid otp")
	// ErrNotFound means there is no live code for the client and number.
	ErrNotFound = errors.New("otp: otp not found or expired")
	// ErrMaxAttempts means the wrong guesses reached max_attempts.
	ErrMaxAttempts = errors.New("otp: maximum verification attempts exceeded")
	// ErrDailyFailures means the wrong guesses of a client and number
	// reached max_failures_per_day within 24 hours of the first of them.
	// It matches ErrMaxAttempts, whose answer it shares.
	ErrDailyFailures = fmt.Errorf("otp: wrong guesses per day exhausted: %w", ErrMaxAttempts)
	// ErrTooManyRequests means a resend came too soon, the hourly cap per
	// number was reached, or the client exceeded its rate.
	ErrTooManyRequests = errors.New("otp: too many requests")
	// ErrNoAPIKey means the request carried no API key.
	ErrNoAPIKey = errors.New("otp: no api key found in request")
	// ErrInvalidAPIKey means the API key matches no client.
	ErrInvalidAPIKey = errors.New("otp: invalid authentication credentials")
	// ErrOutcomeUnknown accompanies ErrUpstreamDown when a carrier may have
	// accepted the SMS (a submit written but never answered): the send
	// still counts toward resend_interval and max_per_number_per_hour.
	ErrOutcomeUnknown = errors.New("otp: submit outcome unknown")
	// ErrUnavailable means the store could not make a write durable: no SMS
	// was sent for it (a send's count is written before its submit).
	ErrUnavailable = errors.New("otp: service unavailable")
	// ErrRequestNotFound means a status lookup found no request of this client.
	ErrRequestNotFound = errors.New("otp: request not found")
)

// The causes of ErrTooManyRequests; errors.Is(err, ErrTooManyRequests) holds for each.
var (
	// ErrClientRate means the client exceeded its configured rate.
	ErrClientRate = fmt.Errorf("%w: client rate", ErrTooManyRequests)
	// ErrResendTooSoon means resend_interval has not passed since the last send.
	ErrResendTooSoon = fmt.Errorf("%w: resend interval", ErrTooManyRequests)
	// ErrHourlyCap means max_per_number_per_hour sends were made in the last hour.
	ErrHourlyCap = fmt.Errorf("%w: hourly cap", ErrTooManyRequests)
	// ErrSendInProgress means another send to the same client and number is running.
	ErrSendInProgress = fmt.Errorf("%w: send in progress", ErrTooManyRequests)
	// ErrGuarded means the pumping guard refused the send; the guard's
	// *guard.Refusal, wrapped with it, names the rule.
	ErrGuarded = fmt.Errorf("%w: pumping guard", ErrTooManyRequests)
)
