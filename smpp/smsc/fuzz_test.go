package smsc_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"

	"github.com/otpgate/otpgate/smpp/smsc"
)

func encode(tb testing.TB, p pdu.Body) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// FuzzServerPDU writes arbitrary bytes to a bound session, then half-closes
// it: the server must neither panic nor hang (it closes its side once it has
// read everything), and must keep serving new sessions.
func FuzzServerPDU(f *testing.F) {
	// Any system_id binds: each input binds its own, so receipts queued for
	// one input (its session is gone) do not flood the next.
	s, err := smsc.Listen("127.0.0.1:0", smsc.Options{ReceiptDelay: time.Microsecond, ReceiptTLV: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })

	sub := pdu.NewSubmitSM(nil)
	sub.Fields().Set(pdufield.DestinationAddr, "123")
	sub.Fields().Set(pdufield.RegisteredDelivery, uint8(1))
	sub.Fields().Set(pdufield.ShortMessage, pdutext.UCS2("hi"))
	f.Add(encode(f, sub))
	udh := pdu.NewSubmitSM(nil)
	udh.Fields().Set(pdufield.DestinationAddr, "123")
	udh.Fields().Set(pdufield.ESMClass, uint8(0x40))
	udh.Fields().Set(pdufield.ShortMessage, []byte{5, 0, 3, 1, 2, 1, 'a'})
	f.Add(encode(f, udh))
	f.Add(encode(f, pdu.NewEnquireLink()))
	f.Add(encode(f, pdu.NewUnbind()))
	f.Add(encode(f, pdu.NewBindTransceiver()))
	f.Add([]byte{0, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0, 0, 0, 16, 0x80, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 4})

	var n atomic.Uint32
	f.Fuzz(func(t *testing.T, data []byte) {
		i := n.Add(1)
		bind := pdu.NewBindTransceiver()
		bind.Fields().Set(pdufield.SystemID, fmt.Sprintf("f%d", i))
		// The half-close below leaves this side in TIME_WAIT; spread the
		// source addresses over 127/8 so the ephemeral ports last.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, byte(i>>16), byte(i>>8), byte(i))}}
		nc, err := d.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := nc.Write(append(encode(t, bind), data...)); err != nil {
			t.Fatal(err)
		}
		nc.(*net.TCPConn).CloseWrite()
		// Drain until the server closes its side (it has read our EOF).
		_, err = io.Copy(io.Discard, nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("server did not close the connection after EOF")
		}
		// And it still serves.
		c := dial(t, s)
		if st := c.bind(pdu.NewBindTransceiver(), "check", ""); st != 0 {
			t.Fatalf("bind after input: got %#x, want 0", st)
		}
		c.sync()
	})
}
