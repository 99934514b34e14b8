package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/otpgate/otpgate/guard"
)

// newGuard builds the pumping guard of cfg (already validated). When the
// store is the fleet's (store.backend redis), the guard's blocks, budgets
// and verified numbers are the fleet's: it reads the blocks in force
// before it returns, and keeps them in step until bg is done (d.wg waits
// for that).
func (d *Server) newGuard(bg context.Context, cfg *Config, db storeBackend) (*guard.Guard, error) {
	o := guard.Options{Logger: d.log.With(keyComponent, "guard")}
	if d.Metrics != nil {
		o.Observer = d.Metrics
	}
	shared, _ := db.(guard.Shared)
	o.Shared = shared
	g, err := guard.New(guardConfig(cfg), o)
	if err != nil {
		return nil, err
	}
	if o.Shared != nil {
		ctx, cancel := context.WithTimeout(bg, redisOpenTimeout)
		if err := g.Sync(ctx, time.Now()); err != nil {
			d.log.Warn("guard blocks not read from the store: the fleet's apply within a second", keyError, err)
		}
		cancel()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			g.Run(bg)
		}()
	}
	d.guard.Store(g)
	return g, nil
}

// swapGuard gives the running guard the settings of cfg (already
// validated): its counters and blocks carry over (see guard.Guard.Swap).
func (d *Server) swapGuard(cfg *Config) {
	if g := d.guard.Load(); g != nil {
		if err := g.Swap(guardConfig(cfg), time.Now()); err != nil {
			d.log.Error("guard settings not applied", keyError, err)
		}
	}
}

// The admin port's guard routes:
//
//	GET  /guard/blocks   the active blocks: a JSON list of guard.Block
//	POST /guard/release  {"range":"+91-98765","client":"","rule":""}: lifts
//	                     the blocks of ranges within (or containing) range
//	                     → {"released":[blocks],"configured":[entries]}
//	                     (configured: guard.block_prefixes entries, which
//	                     only a reload lifts)
func (d *Server) guardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /guard/blocks", func(w http.ResponseWriter, r *http.Request) {
		g := d.guard.Load()
		if g == nil {
			adminJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "guard not running yet"})
			return
		}
		blocks := g.Blocks(time.Now())
		if blocks == nil {
			blocks = []guard.Block{}
		}
		adminJSON(w, http.StatusOK, blocks)
	})
	mux.HandleFunc("POST /guard/release", func(w http.ResponseWriter, r *http.Request) {
		g := d.guard.Load()
		if g == nil {
			adminJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "guard not running yet"})
			return
		}
		var req struct {
			Range  string `json:"range"`
			Client string `json:"client"`
			Rule   string `json:"rule"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			adminJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"range":"+91-98765","client":"","rule":""}`})
			return
		}
		released, configured, err := g.Release(time.Now(), guard.Release{Range: req.Range, Client: req.Client, Rule: req.Rule})
		if errors.Is(err, guard.ErrBadRange) {
			adminJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if errors.Is(err, guard.ErrNotShared) { // the fleet's store is down: say so, and try again later
			adminJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		if released == nil {
			released = []guard.Block{}
		}
		if configured == nil {
			configured = []string{}
		}
		adminJSON(w, http.StatusOK, map[string]any{"released": released, "configured": configured})
	})
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
