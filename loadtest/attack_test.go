package loadtest_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/loadtest"
)

// TestBench_Attack is `otpgate bench -sim ... -attack ...` against a
// gateway with the guard's defaults: client acme's leaked key pumps three
// ranges while the bench client's and acme's own users log in.
func TestBench_Attack(t *testing.T) {
	simAddr := freeAddr(t)
	acme := "  - id: acme\n    api_keys: [\"" + daemon.HashKey("acme-key-0001") + "\"]\n    sender: ACME\n    countries: [\"*\"]\n" +
		"    rate: {per_second: 1000, burst: 1000}\n"
	url, _, _ := startGatewayWith(t, simAddr, "    rate: {per_second: 1000, burst: 1000}\n"+acme, "")
	var stdout, stderr bytes.Buffer
	o := loadtest.BenchOptions{
		Options: loadtest.Options{URL: url, ClientID: loadtest.DefaultClientID, APIKey: loadtest.DefaultAPIKey, Concurrency: 4},
		SimAddr: simAddr, SimSystemID: "bench", SimPassword: "bench", ReceiptDelay: 10 * time.Millisecond, Wait: time.Minute,
		Attack: loadtest.AttackConfig{Attacker: loadtest.Client{ID: "acme", Key: "acme-key-0001"},
			Ranges: []string{"+91-981110", "+44-770090", "+234-803111"}, Count: 200},
	}
	if err := loadtest.Bench(context.Background(), o, &stdout, &stderr); err != nil {
		t.Fatalf("Bench: %v; stderr: %s", err, stderr.String())
	}
	out := stdout.String()
	t.Log("\n" + out)
	for _, want := range []string{"legitimate sends:", ", refused: 0 (", ", failed: 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ranges := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || !strings.HasSuffix(f[0], "xxxx") {
			continue
		}
		ranges++
		if sms, err := strconv.Atoi(f[5]); err != nil || sms >= 50 || f[2] != f[5] || f[4] != "0" {
			t.Errorf("want under 50 SMS at the carrier (all the 200s) and no other answer than 200 and 429: %s", line)
		}
	}
	if ranges != 3 {
		t.Errorf("got %d ranges in the table, want 3", ranges)
	}
}

func TestAttack_BadConfig(t *testing.T) {
	codes := func(string) (string, bool) { return "", false }
	for name, cfg := range map[string]loadtest.AttackConfig{
		"NoAttacker": {URL: "http://127.0.0.1:1", Ranges: []string{"+91-98"}, Codes: codes},
		"NoRange":    {URL: "http://127.0.0.1:1", Attacker: loadtest.Client{ID: "a", Key: "k"}, Codes: codes},
		"BadRange":   {URL: "http://127.0.0.1:1", Attacker: loadtest.Client{ID: "a", Key: "k"}, Ranges: []string{"98"}, Codes: codes},
		"NoCodes":    {URL: "http://127.0.0.1:1", Attacker: loadtest.Client{ID: "a", Key: "k"}, Ranges: []string{"+91-98"}},
		"BigCount": {URL: "http://127.0.0.1:1", Attacker: loadtest.Client{ID: "a", Key: "k"}, Ranges: []string{"+91-98"},
			Codes: codes, Count: 20000},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadtest.Attack(context.Background(), cfg, nil); err == nil {
				t.Fatal("got nil error")
			}
		})
	}
}
