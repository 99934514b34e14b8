package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// `otpgate status` and `otpgate carrier suspend|resume NAME` call the
// running gateway's admin port (GET /carriers, POST
// /carriers/{name}/suspend|resume).

const defaultAdminURL = "http://127.0.0.1:9464"

// adminFlags parses -admin and -token-file from args, with positional
// arguments allowed before, between and after the flags; it returns them.
func adminFlags(name string, args []string, stderr io.Writer) (*adminClient, []string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("admin", defaultAdminURL, "the gateway's admin port")
	tokenFile := fs.String("token-file", "", "file holding the admin token (admin.token_file)")
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, false
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	c := &adminClient{base: strings.TrimSuffix(*base, "/")}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "otpgate %s: %v\n", name, err)
			return nil, nil, false
		}
		c.token = strings.TrimSpace(string(b))
	}
	return c, rest, true
}

// call sends method path (adminClient, guard.go) and decodes the JSON
// answer into out.
func (c *adminClient) call(method, path string, out any) error {
	b, err := c.do(method, path, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// cmdStatus is `otpgate status`: the carriers table.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	c, rest, ok := adminFlags("status", args, stderr)
	if !ok {
		return 2
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "otpgate status: unexpected argument %q\n", rest[0])
		return 2
	}
	var reply daemon.CarriersReply
	if err := c.call("GET", "/carriers", &reply); err != nil {
		fmt.Fprintf(stderr, "otpgate status: %v\n", err)
		return 1
	}
	printCarriers(stdout, reply.Carriers)
	return 0
}

// cmdCarrier is `otpgate carrier suspend|resume NAME`.
func cmdCarrier(args []string, stdout, stderr io.Writer) int {
	c, rest, ok := adminFlags("carrier", args, stderr)
	if !ok {
		return 2
	}
	if len(rest) != 2 || (rest[0] != "suspend" && rest[0] != "resume") {
		fmt.Fprint(stderr, "usage: otpgate carrier suspend|resume NAME [-admin URL] [-token-file FILE]\n")
		return 2
	}
	var st daemon.CarrierStatus
	if err := c.call("POST", "/carriers/"+url.PathEscape(rest[1])+"/"+rest[0], &st); err != nil {
		fmt.Fprintf(stderr, "otpgate carrier: %v\n", err)
		return 1
	}
	printCarriers(stdout, []daemon.CarrierStatus{st})
	return 0
}

// printCarriers writes one line per carrier.
func printCarriers(w io.Writer, cs []daemon.CarrierStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CARRIER\tSTATE\tBINDS\tTPS\tSUBMITS/S\tLAST BIND FAILURE")
	for _, c := range cs {
		state := "bound"
		switch {
		case c.Suspended:
			state = "suspended"
		case c.BindsUp == 0:
			state = "unbound"
		case c.BindsUp < c.BindsConfigured:
			state = "partly bound"
		}
		if c.Degraded {
			state += ", degraded"
		}
		tps := "unlimited"
		if c.TPS > 0 {
			tps = fmt.Sprintf("%g", c.TPS)
		}
		failure := "-"
		if c.LastBindFailure != "" && c.LastBindFailureAt != nil {
			failure = fmt.Sprintf("%s (%s)", c.LastBindFailure, c.LastBindFailureAt.Local().Format(time.DateTime))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%.2f\t%s\n", c.Name, state, c.BindsUp, c.BindsConfigured, tps, c.SubmitRate, failure)
	}
	tw.Flush()
}
