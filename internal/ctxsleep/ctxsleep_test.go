package ctxsleep_test

import (
	"context"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/ctxsleep"
)

func TestSleep(t *testing.T) {
	if !ctxsleep.Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a sleep that ran its course reported false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ctxsleep.Sleep(ctx, time.Hour) {
		t.Fatal("a sleep cut short by its context reported true")
	}
}
