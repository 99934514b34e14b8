package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// ErrNotRunning means Reload was called before Run set the daemon up.
var ErrNotRunning = errors.New("daemon: not running")

// ReloadFile reads, checks and applies the configuration at path (SIGHUP).
// On any problem the running configuration stays and the error says why.
func (d *Server) ReloadFile(path string) error {
	if d.isStopping() {
		return ErrNotRunning
	}
	d.notify.Reloading()
	defer d.notify.Ready() // after a rejected file too: the old one serves
	cfg, err := LoadConfig(path)
	if err != nil {
		d.reloadRejected(err)
		return err
	}
	return d.Reload(cfg)
}

// Reload applies cfg as a whole: clients, keys, texts, limits, blocked
// numbers, the pumping guard's settings (its counters and blocks carry
// over), routes, log level and carriers (only changed carriers rebind;
// removed ones drain and unbind). An invalid cfg, or one that changes
// listen, data_dir or secret_file, is rejected and the running
// configuration keeps serving.
func (d *Server) Reload(cfg *Config) error {
	err := d.reload(cfg)
	if err != nil {
		d.reloadRejected(err)
		return err
	}
	if d.Metrics != nil {
		d.Metrics.Reload(true)
	}
	d.log.Info("configuration reloaded", keyClients, len(cfg.Clients), keyCarriers, len(cfg.Carriers), keyRoutes, len(cfg.Routes))
	logWarnings(d.log, cfg)
	return nil
}

func (d *Server) reloadRejected(err error) {
	if d.Metrics != nil {
		d.Metrics.Reload(false)
	}
	d.log.Error("configuration reload rejected: keeping the running configuration", keyError, err)
}

func (d *Server) reload(cfg *Config) error {
	if ps := cfg.Validate(); len(ps) > 0 {
		return ps
	}
	d.reloadMu.Lock() // one reload at a time, drains included
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	fleet, secret := d.fleet, d.secret
	d.mu.Unlock()
	fleetFP := ""
	if fleet != nil { // a Redis round trip: not under mu
		ctx, cancel := context.WithTimeout(context.Background(), fleetCheckTimeout)
		fp, err := fleet.checkReload(ctx, cfg, secret)
		cancel()
		if err != nil {
			return err
		}
		fleetFP = fp
	}
	var retired []*carrierRun
	defer func() { d.stopRuns(retired) }() // after mu is released
	d.mu.Lock()
	defer d.mu.Unlock()
	svc := d.svc.Load()
	if svc == nil || d.stopping {
		return ErrNotRunning
	}
	old := d.cfg
	if fixed := restartOnly(old, cfg); len(fixed) > 0 {
		return fixed
	}
	settings, err := buildSettings(cfg)
	if err != nil {
		return fmt.Errorf("daemon: reload: %w", err)
	}
	retired, err = d.applyCarriers(cfg)
	if err != nil {
		return fmt.Errorf("daemon: reload: %w", err)
	}
	svc.Swap(settings)
	d.swapGuard(cfg)
	d.access.Store(accessOf(cfg))
	if d.Level != nil {
		d.Level.Set(ParseLevel(cfg.Log.Level))
	}
	d.cfg = cfg
	if fleet != nil {
		fleet.inForce(fleetFP)
	}
	return nil
}

// fleetCheckTimeout bounds a reload's check of the fleet's config
// fingerprint in Redis.
const fleetCheckTimeout = 5 * time.Second

func (d *Server) isStopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

// restartOnly lists the top-level keys tagged reload:"restart" whose value
// differs between old and next.
func restartOnly(old, next *Config) Problems {
	var ps Problems
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*next)
	t := ov.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("reload") != "restart" || reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		ps = append(ps, Problem{key, "cannot change while running (restart instead)"})
	}
	return ps
}
