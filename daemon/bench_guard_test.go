package daemon_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// BenchmarkGateway_SendOTPRandom is BenchmarkGateway_SendOTP with random
// numbers, as real logins are: the pumping guard's path for sends it lets
// through without a second look (consecutive numbers trip it at once).
func BenchmarkGateway_SendOTPRandom(b *testing.B) {
	g, _ := benchGateway(b)
	client := benchClient()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(uint64(b.N), 7))
	drive(b, "sends", func() (int, error) {
		mu.Lock()
		n := rng.IntN(1e9)
		mu.Unlock()
		return post(client, g.url+sendPath, keyA, sendBody(clientA, fmt.Sprintf("+91-9%09d", n), "6"))
	})
}
