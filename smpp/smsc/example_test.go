package smsc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// A test starts a simulator on a free port, points its SMPP client at Addr,
// scripts failures while the client runs, and inspects what arrived.
func Example() {
	s, err := smsc.Listen("127.0.0.1:0", smsc.Options{SystemID: "otpgate", Password: "secret", ReceiptTLV: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	s.SetThrottle(10, 5) // then 0x58 ESME_RTHROTTLED beyond 10/s, burst 5
	// ... bind a client to s.Addr() and submit ...
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	msgs, err := s.WaitMessages(ctx, 1)
	fmt.Println(len(msgs), err != nil, s.Bound())
	// Output: 0 true 0
}
