package daemon_test

import (
	"fmt"
	"testing"

	"github.com/otpgate/otpgate/daemon"
)

// BenchmarkGateway_SendOTP_RedisBudget is BenchmarkGateway_SendOTP_Redis
// with a budget on the client (overall and for India, never reached):
// the fleet-wide budget's share of a send is the difference between the
// two.
func BenchmarkGateway_SendOTP_RedisBudget(b *testing.B) {
	gs, _ := benchFleet(b, 1, func(cfg *daemon.Config) {
		cfg.Clients[0].Budget = daemon.BudgetConfig{PerHour: 1 << 30, PerDay: 1 << 30,
			Countries: map[string]daemon.BudgetLimits{"IN": {PerDay: 1 << 30}}}
	})
	client := benchClient()
	drive(b, "sends", func() (int, error) {
		return post(client, gs[0].url+sendPath, keyA, sendBody(clientA, fmt.Sprintf("+91-9%09d", benchSeq.Add(1)), "6"))
	})
}
