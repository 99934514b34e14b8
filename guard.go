package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/guard"
)

const guardUsage = `usage:
  otpgate guard blocks [-admin URL] [-token-file F] [-json]
  otpgate guard release RANGE [-client ID] [-rule RULE] [-admin URL] [-token-file F]

RANGE is a prefix ("+91-98765") or a number: the blocks of ranges within it,
or holding it, are lifted and their counts forgotten.
`

// cmdGuard is `otpgate guard`: the pumping guard's blocks, through the
// admin port of a running gateway. It returns 0 when done, 1 when the
// gateway could not be asked (or a release matched nothing), 2 for bad
// arguments.
func cmdGuard(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "blocks" && args[0] != "release") {
		fmt.Fprint(stderr, guardUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("guard "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "http://127.0.0.1:9464", "the gateway's admin port (admin_listen)")
	tokenFile := fs.String("token-file", "", "file holding the admin token (admin.token_file)")
	client := fs.String("client", "", "release: only this client's blocks (\"*\": only those of every client)")
	rule := fs.String("rule", "", "release: only the blocks of this rule")
	asJSON := fs.Bool("json", false, "blocks: print the JSON the admin port returns")
	// Flags may come before or after RANGE.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if (sub == "blocks" && len(pos) != 0) || (sub == "release" && len(pos) != 1) {
		fmt.Fprint(stderr, guardUsage)
		return 2
	}
	a := adminClient{base: strings.TrimRight(*admin, "/")}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "otpgate guard: %v\n", err)
			return 1
		}
		a.token = strings.TrimSpace(string(b))
	}
	if sub == "blocks" {
		return guardBlocks(a, *asJSON, stdout, stderr)
	}
	return guardRelease(a, guard.Release{Range: pos[0], Client: *client, Rule: *rule}, stdout, stderr)
}

func guardBlocks(a adminClient, asJSON bool, stdout, stderr io.Writer) int {
	body, err := a.do("GET", "/guard/blocks", nil)
	if err != nil {
		fmt.Fprintf(stderr, "otpgate guard blocks: %v\n", err)
		return 1
	}
	if asJSON {
		stdout.Write(body)
		return 0
	}
	var blocks []guard.Block
	if err := json.Unmarshal(body, &blocks); err != nil {
		fmt.Fprintf(stderr, "otpgate guard blocks: unexpected answer: %v\n", err)
		return 1
	}
	if len(blocks) == 0 {
		fmt.Fprintln(stdout, "no active blocks")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tRANGE\tCLIENT\tACTION\tSINCE\tREFUSED\tREASON")
	for _, b := range blocks {
		reason := b.Reason
		if b.Carrier != "" && !strings.Contains(reason, b.Carrier) {
			reason += " (carrier " + b.Carrier + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", b.Rule, b.Range, b.Client, b.Action,
			b.Since.Local().Format(time.DateTime), b.Refused, reason)
	}
	tw.Flush()
	return 0
}

func guardRelease(a adminClient, r guard.Release, stdout, stderr io.Writer) int {
	req, _ := json.Marshal(map[string]string{"range": r.Range, "client": r.Client, "rule": r.Rule})
	body, err := a.do("POST", "/guard/release", req)
	if err != nil {
		fmt.Fprintf(stderr, "otpgate guard release: %v\n", err)
		return 1
	}
	var res struct {
		Released   []guard.Block `json:"released"`
		Configured []string      `json:"configured"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		fmt.Fprintf(stderr, "otpgate guard release: unexpected answer: %v\n", err)
		return 1
	}
	for _, b := range res.Released {
		fmt.Fprintf(stdout, "released %s block of %s for client %s (raised %s, %d refused)\n", b.Rule, b.Range, b.Client,
			b.Since.Local().Format(time.DateTime), b.Refused)
	}
	for _, e := range res.Configured {
		fmt.Fprintf(stdout, "%s is in guard.block_prefixes: remove it from the file and reload\n", e)
	}
	if len(res.Released) == 0 {
		fmt.Fprintf(stderr, "otpgate guard release: no active block matches %s\n", r.Range)
		return 1
	}
	return 0
}

// adminClient calls a gateway's admin port.
type adminClient struct {
	base, token string
}

func (a adminClient) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return nil, errors.New(resp.Status + ": " + strings.TrimSpace(string(b)))
	}
	return b, nil
}
