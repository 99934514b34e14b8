package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otpgate/otpgate/internal/proccpu"
)

// Stretch is one stretch of a soak (Options.Stretch): its sends, and the
// gateway as it stood at the stretch's end.
type Stretch struct {
	Phase
	// RSSBytes is the gateway's process_resident_memory_bytes at the
	// stretch's end; 0 when unknown (no AdminURL).
	RSSBytes float64 `json:"rss_bytes"`
	// PeakRSSBytes is the largest process_resident_memory_bytes read
	// during the stretch (every rssEvery, and at its end).
	PeakRSSBytes float64 `json:"peak_rss_bytes"`
	// CPUSeconds is the gateway's process_cpu_seconds_total spent during
	// the stretch.
	CPUSeconds float64 `json:"cpu_seconds"`
	// ToolCPUSeconds is this process's CPU time (the load tool, and the
	// simulator when Bench runs one) during the stretch: on a machine the
	// gateway shares, its growth explains part of a falling rate.
	ToolCPUSeconds float64 `json:"tool_cpu_seconds"`
	// DataBytes is the size of the data directory; 0 when unknown.
	DataBytes int64 `json:"data_bytes"`
}

// CPUPerSend is the gateway's CPU time per request of the stretch.
func (s Stretch) CPUPerSend() time.Duration {
	if s.Requests == 0 {
		return 0
	}
	return time.Duration(s.CPUSeconds / float64(s.Requests) * float64(time.Second))
}

// runStretches runs cfg.Count sends in stretches of cfg.Stretch and
// returns the whole phase and each stretch.
func runStretches(ctx context.Context, cfg Options, peak *rssPeak, send func(i int) (int, bool)) (Phase, []Stretch) {
	total := Phase{Name: "send", Statuses: map[int]int{}}
	var all []time.Duration
	var out []Stretch
	_, cpu0 := gatewayProcess(ctx, cfg)
	own0 := proccpu.Seconds()
	for off := 0; off < cfg.Count && ctx.Err() == nil; off += cfg.Stretch {
		n := min(cfg.Stretch, cfg.Count-off)
		p, lats := runPhaseLats(ctx, fmt.Sprintf("send %d", len(out)+1), cfg, n, func(i int) (int, bool) { return send(off + i) })
		st := Stretch{Phase: p}
		rss, cpu := gatewayProcess(ctx, cfg)
		st.RSSBytes, st.CPUSeconds, cpu0 = rss, max(cpu-cpu0, 0), cpu
		own := proccpu.Seconds()
		st.ToolCPUSeconds, own0 = own-own0, own
		peak.note(rss)
		st.PeakRSSBytes = peak.take()
		st.DataBytes = dirSize(cfg.DataDir)
		out = append(out, st)
		total.Elapsed += p.Elapsed
		for code, k := range p.Statuses {
			total.Statuses[code] += k
		}
		all = append(all, lats...)
	}
	slices.Sort(all)
	total.setLatencies(all)
	return total, out
}

// rssEvery is how often a run reads the gateway's resident memory for its
// peaks.
const rssEvery = 250 * time.Millisecond

// rssPeak reads the gateway's resident memory every rssEvery until stopped
// and keeps its peaks: since the last take, and over the whole run. A nil
// *rssPeak (no AdminURL) reads nothing and reports zeros.
type rssPeak struct {
	mu          sync.Mutex
	since, peak float64
	stop, done  chan struct{}
	stopOnce    sync.Once
}

// watchRSS starts an rssPeak; nil when cfg has no AdminURL.
func watchRSS(ctx context.Context, cfg Options) *rssPeak {
	if cfg.AdminURL == "" {
		return nil
	}
	p := &rssPeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			stopping := false
			select {
			case <-ctx.Done():
				return
			case <-p.stop: // one last read
				stopping = true
			case <-t.C:
			}
			if rss, _ := gatewayProcess(ctx, cfg); rss > 0 {
				p.note(rss)
			}
			if stopping {
				return
			}
		}
	}()
	return p
}

// note counts a reading of the resident memory.
func (p *rssPeak) note(rss float64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since, p.peak = max(p.since, rss), max(p.peak, rss)
}

// take returns the peak since the last take and starts a new one.
func (p *rssPeak) take() float64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.since
	p.since = 0
	return v
}

// close stops the reads and returns the run's peak. It may be called more
// than once.
func (p *rssPeak) close() float64 {
	if p == nil {
		return 0
	}
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// gatewayProcess reads process_resident_memory_bytes and
// process_cpu_seconds_total from the gateway's admin /metrics (zeros when
// there is no AdminURL or it does not answer).
func gatewayProcess(ctx context.Context, cfg Options) (rss, cpu float64) {
	if cfg.AdminURL == "" {
		return 0, 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.AdminURL+"/metrics", nil)
	if err != nil {
		return 0, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(v, 64)
		case "process_cpu_seconds_total":
			cpu, _ = strconv.ParseFloat(v, 64)
		}
	}
	return rss, cpu
}

// dirSize is the size of the files below dir (0 for "" or on error).
func dirSize(dir string) int64 {
	if dir == "" {
		return 0
	}
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}
