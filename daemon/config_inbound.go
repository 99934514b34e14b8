package daemon

import (
	"fmt"
	"net/url"
	"time"
	_ "time/tzdata" // receipt_timezone must load on hosts without a zoneinfo database

	"github.com/otpgate/otpgate/otp"
)

// validateInbound checks the keys of receipts and MO messages:
// clients[].mo_callback_url and carriers[].receipt_timezone.
func (c *Config) validateInbound(add func(path, format string, a ...any)) {
	moSenders := map[string]int{}
	for i, cl := range c.Clients {
		if cl.MOCallbackURL == "" {
			continue
		}
		p := fmt.Sprintf("clients[%d]", i)
		if u, err := url.Parse(cl.MOCallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(p+".mo_callback_url", "want an absolute http:// or https:// URL")
		}
		if cl.CallbackSecret == "" {
			add(p+".mo_callback_url", "needs callback_secret: MO callbacks are signed with it")
		}
		// An MO reaches one client; two that share a sender would leave it
		// to config order which one reads the other's subscribers' replies.
		k := otp.SenderKey(cl.Sender)
		if j, dup := moSenders[k]; dup {
			add(p+".mo_callback_url", "clients[%d] has the same sender %q and an mo_callback_url: MO messages to it would go to one of them only", j, cl.Sender)
		} else {
			moSenders[k] = i
		}
	}
	for i, k := range c.Carriers {
		if _, err := receiptLocation(k.ReceiptTimezone); err != nil {
			add(fmt.Sprintf("carriers[%d].receipt_timezone", i), "%v", err)
		}
	}
}

// receiptLocation loads a receipt_timezone: "" is UTC; "Local" is refused,
// since the zone of the host running otpgate says nothing about the
// carrier's.
func receiptLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("name the carrier's zone (e.g. Asia/Kolkata), not Local")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name like Asia/Kolkata)", name)
	}
	return loc, nil
}
