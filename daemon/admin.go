package daemon

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"
)

// The admin port serves what operators use and clients must not reach:
// /metrics, /readyz with its reason, /healthz, and pprof when admin.pprof
// is set. It listens on admin_listen, loopback unless admin.allow_remote;
// with admin.token_file every request needs "Authorization: Bearer <token>".

// defaultAdminListen is admin_listen's default: Prometheus' usual port
// range, on loopback.
const defaultAdminListen = "127.0.0.1:9464"

// AdminConfig is the `admin:` section.
type AdminConfig struct {
	PProf       bool   `yaml:"pprof"`        // serve /debug/pprof/
	AllowRemote bool   `yaml:"allow_remote"` // admin_listen may be a non-loopback address (needs token_file)
	TokenFile   string `yaml:"token_file"`   // bearer token every admin request must present
}

// validateAdmin lists the problems of admin_listen and admin.
func (c *Config) validateAdmin(add func(path, format string, a ...any)) {
	if c.DebugListen != "" {
		add("debug_listen", "replaced by admin_listen (pprof with admin.pprof: true)")
	}
	if c.AdminListen == "" {
		return
	}
	host, _, err := net.SplitHostPort(c.AdminListen)
	if err != nil {
		add("admin_listen", "want host:port, got %q", c.AdminListen)
		return
	}
	if !isLoopback(host) && !c.Admin.AllowRemote {
		add("admin_listen", "%q is not a loopback address: set admin.allow_remote (with admin.token_file) to expose metrics and pprof", host)
	}
	if c.Admin.AllowRemote && c.Admin.TokenFile == "" {
		add("admin.token_file", "required with admin.allow_remote: a remote admin port needs a token")
	}
	if c.Admin.TokenFile != "" {
		if _, err := loadAdminToken(c.Admin.TokenFile); err != nil {
			add("admin.token_file", "%v", err)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadAdminToken reads the admin token: at least 16 bytes, in a file only
// its owner (and group) can read.
func loadAdminToken(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %04o)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tok := []byte(strings.TrimSpace(string(b)))
	if len(tok) < 16 {
		return nil, fmt.Errorf("%s holds fewer than 16 bytes", path)
	}
	return tok, nil
}

// startAdmin listens on cfg.AdminListen and serves the admin handler; the
// caller shuts the server down. It returns nil, nil when admin_listen is
// empty.
func (d *Server) startAdmin(cfg *Config) (*http.Server, net.Listener, error) {
	if cfg.AdminListen == "" {
		return nil, nil, nil
	}
	var token []byte
	if cfg.Admin.TokenFile != "" {
		var err error
		if token, err = loadAdminToken(cfg.Admin.TokenFile); err != nil {
			return nil, nil, fmt.Errorf("daemon: admin token: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: admin listen: %w", err)
	}
	mux := http.NewServeMux()
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if err := d.readiness(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"unavailable","reason":%q}`+"\n", err.Error())
			return
		}
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	d.guardRoutes(mux)
	d.controlRoutes(mux) // control.go, status.go
	if cfg.Admin.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	var h http.Handler = mux
	if token != nil {
		h = requireToken(token, mux)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
		MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(d.log.With(keyComponent, "admin").Handler(), slog.LevelWarn)}
	d.log.Info("admin port listening", keyAdminListen, ln.Addr().String(), keyPprof, cfg.Admin.PProf)
	return srv, ln, nil
}

// requireToken answers 401 to a request without "Bearer <token>".
func requireToken(token []byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="otpgate admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveAdmin serves srv on ln until it is shut down.
func serveAdmin(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("daemon: admin serve: %w", err)
	}
	return nil
}

// adminShutdownTimeout bounds the admin server's drain at shutdown.
const adminShutdownTimeout = 2 * time.Second
