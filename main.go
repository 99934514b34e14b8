// Command otpgate is an SMS OTP gateway: it keeps SMPP binds to carriers and
// serves send-otp and verify-otp over HTTP. See README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/loadtest"
	"github.com/otpgate/otpgate/smpp/smsc"
)

const usage = `usage: otpgate <command> [flags]

commands:
  run -config FILE           run the gateway
  check-config -config FILE  check a config file, list every problem
  hash-key                   read an API key on stdin, print its sha256 for the config
  smsc-sim -listen ADDR -system-id ID -password PW
                             run the bundled SMSC simulator
  bench [-sim 127.0.0.1:2775] [-n N | -d DUR] [-c 64] [-url URL -client ID -key KEY]
                             load a running gateway: send-otp, then verify-otp
  bench -sim ADDR -attack +91-981110,... -attack-client ID -attack-key KEY [-attack-rate 300]
                             replay an SMS-pumping attack while -client's users log in
  guard blocks|release RANGE [-admin URL] [-token-file F]
                             list the pumping guard's blocks, or lift those of a range
  fleet adopt -config FILE   make FILE the fleet's configuration (then reload every node)
  status [-admin URL] [-token-file FILE]
                             list the running gateway's carriers (its admin port)
  carrier suspend|resume NAME [-admin URL] [-token-file FILE]
                             unbind a carrier and keep it unbound (its traffic
                             fails over), or bind it again
  version                    print build information
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "hash-key":
		return cmdHashKey(stdin, stdout, stderr)
	case "smsc-sim":
		return cmdSim(args, stderr)
	case "bench":
		return cmdBench(args, stdout, stderr)
	case "guard":
		return cmdGuard(args, stdout, stderr)
	case "fleet":
		return cmdFleet(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "carrier":
		return cmdCarrier(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "otpgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/otpgate/otpgate.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	return *path, true
}

// loadConfigFlag parses -config from args and loads that file, printing
// the problems. A non-zero code is the exit status to return: 2 for bad
// flags, 1 for a bad file.
func loadConfigFlag(name string, args []string, stderr io.Writer) (cfg *daemon.Config, path string, code int) {
	path, ok := configFlag(name, args, stderr)
	if !ok {
		return nil, "", 2
	}
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		printProblems(stderr, path, err)
		return nil, path, 1
	}
	return cfg, path, 0
}

func cmdRun(args []string, stderr io.Writer) int {
	cfg, path, code := loadConfigFlag("run", args, stderr)
	if code != 0 {
		return code
	}
	var level slog.LevelVar
	level.Set(daemon.ParseLevel(cfg.Log.Level))
	logger := slog.New(daemon.NewLogHandler(stderr, cfg.Log.Format, &level))
	daemon.SetProcs(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second signal skips the drain.
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGINT, syscall.SIGTERM) // before stop: no window with the default action
		stop()
		<-again
		logger.Warn("second signal: exiting without drain")
		os.Exit(1)
	}()
	d, err := daemon.New(cfg, logger)
	if err != nil {
		printProblems(stderr, path, err)
		return 1
	}
	d.Level = &level
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = d.ReloadFile(path) // logged by the daemon either way
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		logger.Error("otpgate failed", "error", err)
		return 1
	}
	return 0
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("check-config", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := daemon.LoadConfig(path)
	if cfg != nil {
		printWarnings(stderr, path, cfg.Warnings())
	}
	if err != nil {
		printProblems(stderr, path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

// printWarnings lists what check-config accepts but the operator should
// check; they do not change the exit status.
func printWarnings(w io.Writer, path string, ws daemon.Problems) {
	if len(ws) == 0 {
		return
	}
	fmt.Fprintf(w, "%s: %d warning(s):\n", path, len(ws))
	for _, p := range ws {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func printProblems(w io.Writer, path string, err error) {
	var ps daemon.Problems
	if errors.As(err, &ps) {
		fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(ps))
		for _, p := range ps {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

func cmdHashKey(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "otpgate: hash-key: %v\n", err)
		return 1
	}
	key := strings.TrimRight(line, "\r\n")
	if key == "" {
		fmt.Fprintln(stderr, "otpgate: hash-key: empty key on stdin")
		return 1
	}
	fmt.Fprintln(stdout, daemon.HashKey(key))
	return 0
}

func cmdSim(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("smsc-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2775", "address to listen on")
	systemID := fs.String("system-id", "carrier-a", "system_id clients bind with")
	password := fs.String("password", "secret", "password clients bind with")
	delay := fs.Duration("receipt-delay", 500*time.Millisecond, "delay before each delivery receipt; negative: none")
	format := fs.String("log-format", "text", "json or text")
	maxBinds := fs.Int("max-binds", 0, "binds the account may have at once, as carriers cap them (0: no cap)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var level slog.LevelVar
	logger := slog.New(daemon.NewLogHandler(stderr, *format, &level))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := smsc.Run(ctx, *listen, smsc.Options{SystemID: *systemID, Password: *password, ReceiptDelay: *delay, MaxBinds: *maxBinds,
		ReceiptTLV: true, Logger: logger})
	if err != nil {
		logger.Error("smsc simulator failed", "error", err)
		return 1
	}
	return 0
}

// cmdBench is `otpgate bench`: the load tool (loadtest.Bench). It returns 0
// after a run (whatever the answers), 1 when the run could not be made, 2
// for bad flags.
func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o loadtest.BenchOptions
	fs.StringVar(&o.URL, "url", loadtest.DefaultURL, "gateway base URL")
	fs.StringVar(&o.ClientID, "client", loadtest.DefaultClientID, "clientId of the requests")
	fs.StringVar(&o.APIKey, "key", loadtest.DefaultAPIKey, "API key of the client")
	fs.StringVar(&o.TextID, "text", loadtest.DefaultTextID, "customTextId of the sends")
	fs.IntVar(&o.Concurrency, "c", loadtest.DefaultConcurrency, "requests in flight")
	fs.IntVar(&o.Count, "n", 10000, "sends (then verifies); with -d, a cap (0: none)")
	fs.DurationVar(&o.Duration, "d", 0, "run each phase this long instead of -n requests")
	fs.StringVar(&o.Prefix, "prefix", loadtest.DefaultPrefix, "phone number prefix; nine distinct digits follow")
	fs.StringVar(&o.SimAddr, "sim", "", "start the SMSC simulator on this address (the carrier the gateway dials) and verify the codes it receives")
	fs.StringVar(&o.SimSystemID, "sim-system-id", "bench", "system_id the simulator accepts")
	fs.StringVar(&o.SimPassword, "sim-password", "bench", "password the simulator accepts")
	fs.DurationVar(&o.ReceiptDelay, "receipt-delay", 10*time.Millisecond, "simulator's delay before each delivery receipt; negative: none")
	fs.DurationVar(&o.Wait, "wait", time.Minute, "longest wait for the gateway's /readyz")
	fs.IntVar(&o.Stretch, "stretch", 0, "run the sends in stretches of this many and report each (a soak)")
	fs.StringVar(&o.AdminURL, "admin", "", "the gateway's admin port (http://127.0.0.1:9464): per stretch, its memory and CPU from /metrics")
	fs.StringVar(&o.DataDir, "data-dir", "", "the gateway's data_dir: per stretch, its size")
	ranges := fs.String("attack", "", "pumping attack: comma-separated prefixes (+91-981110) whose consecutive numbers the attacker pumps; needs -sim")
	fs.StringVar(&o.Attack.Attacker.ID, "attack-client", "", "attack: clientId whose key leaked (its real users log in too)")
	fs.StringVar(&o.Attack.Attacker.Key, "attack-key", "", "attack: that client's API key")
	fs.Float64Var(&o.Attack.Rate, "attack-rate", loadtest.DefaultAttackRate, "attack: sends per second, all ranges together")
	fs.IntVar(&o.Attack.Count, "attack-count", loadtest.DefaultAttackCount, "attack: consecutive numbers per range")
	fs.Float64Var(&o.Attack.VerifyShare, "verify-share", loadtest.DefaultVerifyShare, "attack: share of legitimate codes verified")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the load tool's own CPU profile (simulator included) to this file")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write the load tool's heap profile at the end of the run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *ranges != "" {
		o.Attack.Ranges = strings.Split(*ranges, ",")
		if o.SimAddr == "" {
			fmt.Fprintln(stderr, "otpgate bench: -attack needs -sim (the legitimate users read their codes there)")
			return 2
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "otpgate bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := loadtest.Bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "otpgate bench: %v\n", err)
		return 1
	}
	return 0
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "otpgate (no build info)"
	}
	v := "otpgate " + bi.Main.Version + " " + bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision", "vcs.time", "vcs.modified":
			v += " " + s.Key + "=" + s.Value
		}
	}
	return v
}
