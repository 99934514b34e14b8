package smpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp/smsc"
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
		fmt.Errorf("%w: %w", ErrUnanswered, context.DeadlineExceeded), // written, unanswered at the deadline
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

// memFleet is a lease table in memory, for two carriers of one process
// playing two nodes (the Redis one is tested in store/redisstore and, with
// the daemon, over a real cluster).
type memFleet struct {
	mu      sync.Mutex
	holders map[string]*Carrier // slot -> holder
}

type memNode struct {
	f    *memFleet
	self *Carrier
}

func (n *memNode) Acquire(ctx context.Context, carrier, slot string) (context.Context, func(), error) {
	for {
		n.f.mu.Lock()
		if n.f.holders[slot] == nil {
			n.f.holders[slot] = n.self
			n.f.mu.Unlock()
			held, cancel := context.WithCancel(ctx)
			return held, func() {
				cancel()
				n.f.mu.Lock()
				if n.f.holders[slot] == n.self {
					delete(n.f.holders, slot)
				}
				n.f.mu.Unlock()
			}, nil
		}
		n.f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (n *memNode) Remote(string) bool { return false }

func (n *memNode) Forward(context.Context, string, otp.SMS) ([]string, error) {
	return nil, ErrNotBound
}

// TestCarrier_FleetGivesUpUnreachable: a node that holds a slot's lease but
// cannot reach the SMSC gives the lease back after three failed binds, and
// the node that can reach it binds the slot.
func TestCarrier_FleetGivesUpUnreachable(t *testing.T) {
	old := fleetGiveUpPause
	fleetGiveUpPause = time.Minute // not back before the other node bound
	defer func() { fleetGiveUpPause = old }()
	sim, err := smsc.Listen("127.0.0.1:0", smsc.Options{MaxBinds: 1, ReceiptDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	table := &memFleet{holders: map[string]*Carrier{}}
	var dials atomic.Int32
	opts := func(dial func(context.Context, string, string) (net.Conn, error)) CarrierOptions {
		return CarrierOptions{Name: "a", Address: sim.Addr(), SystemID: "sys", Password: "pw", ReconnectDelay: 20 * time.Millisecond,
			Dial: dial}
	}
	cut := NewCarrier(opts(func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no route to host")
	}), nil, nil)
	cut.cfg.Fleet = &memNode{f: table, self: cut}
	gone := &goneObserver{}
	cut.obs = gone
	ok := NewCarrier(opts(nil), nil, nil)
	ok.cfg.Fleet = &memNode{f: table, self: ok}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { cut.Run(ctx) })
	for dials.Load() == 0 { // the cut-off node holds the lease first
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { ok.Run(ctx) })
	deadline := time.Now().Add(20 * time.Second)
	for ok.Bound() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the node that reaches the SMSC never bound (%d dials by the other)", dials.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := dials.Load(); n != fleetGiveUpAfter {
		t.Fatalf("the cut-off node dialled %d times before giving the lease back, want %d", n, fleetGiveUpAfter)
	}
	// Its slot is not its own any more: its bind gauge is dropped, not
	// left at 0 for an alert to read as a carrier down there.
	for deadline := time.Now().Add(10 * time.Second); len(gone.list()) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := gone.list(); len(got) != 1 || got[0] != "a/transceiver-0" {
		t.Fatalf("BindGone: got %v, want [a/transceiver-0]", got)
	}
	cancel()
	wg.Wait()
}

// goneObserver records BindGone calls.
type goneObserver struct {
	nopObserver
	mu   sync.Mutex
	gone []string
}

func (o *goneObserver) BindGone(carrier, bind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gone = append(o.gone, carrier+"/"+bind)
}

func (o *goneObserver) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.gone...)
}
