package smpp

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestForwardCode_RoundTrip: an error of a submit made on another node
// reads, once it has crossed as a forward code, the way the router reads
// the same error made here: whether the next carrier may take the SMS,
// and whether it may already be on its way.
func TestForwardCode_RoundTrip(t *testing.T) {
	errs := []error{
		fmt.Errorf("carrier x: %w", ErrNotBound),
		fmt.Errorf("carrier x: %w", ErrThrottled),
		&StatusError{Status: StatusThrottled},
		&StatusError{Status: 0x0B}, // ESME_RINVDSTADR: permanent
		&StatusError{Status: 0x45},
		fmt.Errorf("part 2/3: %w: %w", ErrPartial, ErrUnanswered),
		&SessionLostError{Written: true},
		&SessionLostError{Written: false},
		fmt.Errorf("%w: %w: stalled", ErrStalled, ErrUnanswered),
		fmt.Errorf("x: %w", ErrUnanswered),
		context.DeadlineExceeded,
		errors.New("something else"),
	}
	for _, err := range errs {
		code, status := ForwardCode(err)
		back := ForwardError(code, status)
		if failover(back) != failover(err) || maybeSent(back) != maybeSent(err) {
			t.Errorf("%v → %s/%#x → %v: failover %v→%v, maybe sent %v→%v",
				err, code, status, back, failover(err), failover(back), maybeSent(err), maybeSent(back))
		}
		var se, seBack *StatusError
		if errors.As(err, &se) && (!errors.As(back, &seBack) || seBack.Permanent() != se.Permanent()) {
			t.Errorf("%v: status lost on the way: %v", err, back)
		}
	}
}
