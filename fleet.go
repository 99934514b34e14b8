package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// cmdFleet is `otpgate fleet adopt -config FILE`: FILE's configuration
// becomes the fleet's, so that the nodes accept it on their next reload
// (and nodes started with it join); until then the nodes refuse a reload
// to a configuration other than the fleet's.
func cmdFleet(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "adopt" {
		fmt.Fprintln(stderr, "usage: otpgate fleet adopt -config FILE")
		return 2
	}
	cfg, path, code := loadConfigFlag("fleet adopt", args[1:], stderr)
	if code != 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fp, err := daemon.AdoptFleetConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "otpgate fleet adopt: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: the fleet's configuration now (fingerprint %s); reload every node (systemctl reload otpgate)\n", path, fp)
	return 0
}
