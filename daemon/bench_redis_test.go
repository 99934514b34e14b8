package daemon_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// benchFleet starts n gateways with store.backend redis on a Redis
// Cluster of their own (3 masters, 3 replicas, appendfsync always) and one
// simulator, each configured as benchGateway's (then by adjust, if any).
func benchFleet(b *testing.B, n int, adjust ...func(*daemon.Config)) ([]*gateway, *smsc.Server) {
	sim := startSim(b, smsc.Options{ReceiptDelay: 10 * time.Millisecond})
	f := startFleetOn(b, n, sim, cfgOpts{perHour: 1000000}, func(cfg *daemon.Config) {
		cfg.Carriers[0].Binds = 2 // the fleet's: one per node with two nodes
		cfg.Carriers[0].Window = 64
		cfg.Log.Level = "warn"
		// As benchGateway: the guard runs but does not refuse.
		cfg.Clients[0].Rate = daemon.RateConfig{PerSecond: 1e6, Burst: 1e6}
		cfg.Guard.Mode = "monitor"
		cfg.Store.Redis.WaitTimeout = daemon.Duration(time.Second)
		for _, f := range adjust {
			f(cfg)
		}
	})
	return f.nodes, sim
}

// BenchmarkGateway_SendOTP_Redis is BenchmarkGateway_SendOTP with
// store.backend redis: every write waited for on a replica.
func BenchmarkGateway_SendOTP_Redis(b *testing.B) {
	gs, _ := benchFleet(b, 1)
	client := benchClient()
	drive(b, "sends", func() (int, error) {
		return post(client, gs[0].url+sendPath, keyA, sendBody(clientA, fmt.Sprintf("+91-9%09d", benchSeq.Add(1)), "6"))
	})
}

// BenchmarkGateway_VerifyOTP_Redis is BenchmarkGateway_VerifyOTP with
// store.backend redis.
func BenchmarkGateway_VerifyOTP_Redis(b *testing.B) {
	gs, sim := benchFleet(b, 1)
	benchVerify(b, gs, sim)
}

// BenchmarkFleet_SendOTP sends through two gateways on one cluster, in
// turn: the fleet's throughput on this machine.
func BenchmarkFleet_SendOTP(b *testing.B) {
	gs, _ := benchFleet(b, 2)
	client := benchClient()
	drive(b, "sends", func() (int, error) {
		i := benchSeq.Add(1)
		return post(client, gs[i%2].url+sendPath, keyA, sendBody(clientA, fmt.Sprintf("+91-9%09d", i), "6"))
	})
}

// BenchmarkFleet_SendOTP_Forwarded is BenchmarkFleet_SendOTP with one
// bind for the fleet: the node without it forwards its half of the sends
// to the holder over the internal port (mutual TLS).
func BenchmarkFleet_SendOTP_Forwarded(b *testing.B) {
	gs, _ := benchFleet(b, 2, func(cfg *daemon.Config) { cfg.Carriers[0].Binds = 1 })
	client := benchClient()
	drive(b, "sends", func() (int, error) {
		i := benchSeq.Add(1)
		return post(client, gs[i%2].url+sendPath, keyA, sendBody(clientA, fmt.Sprintf("+91-9%09d", i), "6"))
	})
}

// BenchmarkFleet_VerifyOTP verifies through two gateways on one cluster,
// in turn.
func BenchmarkFleet_VerifyOTP(b *testing.B) {
	gs, sim := benchFleet(b, 2)
	benchVerify(b, gs, sim)
}
