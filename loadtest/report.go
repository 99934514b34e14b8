package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Phase is the outcome of one phase of a run.
type Phase struct {
	// Name is "send" or "verify".
	Name string `json:"name"`
	// Requests counts the requests made, answered or not.
	Requests int `json:"requests"`
	// OK counts 200 answers.
	OK int `json:"ok"`
	// Elapsed is the phase's wall time.
	Elapsed time.Duration `json:"elapsed_ns"`
	// PerSecond is Requests divided by Elapsed.
	PerSecond float64 `json:"per_second"`
	// P50, P90, P99 and Max are latency quantiles over all requests.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Statuses counts answers by HTTP status; 0 counts requests that got
	// no answer (connection errors, timeouts).
	Statuses map[int]int `json:"statuses"`
	// NoCode counts, in the verify phase, sends whose code Codes did not
	// know; they are not verified and not counted in Requests.
	NoCode int `json:"no_code,omitempty"`
}

// Errors counts the requests that did not get 200.
func (p Phase) Errors() int { return p.Requests - p.OK }

// Report is the outcome of Run.
type Report struct {
	Send   Phase `json:"send"`
	Verify Phase `json:"verify"`
	// Stretches are the send phase's stretches (Options.Stretch).
	Stretches []Stretch `json:"stretches,omitempty"`
	// PeakRSSBytes is the gateway's largest resident memory read during
	// the run, sends and verifies (every 250 ms); 0 without AdminURL.
	PeakRSSBytes float64 `json:"peak_rss_bytes,omitempty"`
	// VerifyCPUSeconds is the gateway's process_cpu_seconds_total spent
	// during the verify phase; 0 without AdminURL.
	VerifyCPUSeconds float64 `json:"verify_cpu_seconds,omitempty"`
}

// write prints rep as a table.
func write(out io.Writer, cfg Options, rep Report) {
	if out == nil {
		return
	}
	fmt.Fprintf(out, "otpgate bench: %s, %d concurrent\n", cfg.URL, cfg.Concurrency)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\tok\tseconds\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, p := range []Phase{rep.Send, rep.Verify} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t\n", p.Name, p.Requests, p.OK, p.Elapsed.Seconds(),
			p.PerSecond, ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))
	}
	tw.Flush()
	if len(rep.Stretches) > 0 {
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "stretch\tsends\treq/s\tp50 ms\tp99 ms\tgateway RSS MiB\tpeak RSS MiB\tgateway CPU ms/send\tdata MiB\tload tool CPU ms/send\t")
		for i, st := range rep.Stretches {
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%.0f\t%.0f\t%.3f\t%.0f\t%.3f\t\n", i+1, st.Requests, st.PerSecond, ms(st.P50), ms(st.P99),
				st.RSSBytes/(1<<20), st.PeakRSSBytes/(1<<20), float64(st.CPUPerSend().Microseconds())/1000, float64(st.DataBytes)/(1<<20),
				st.ToolCPUSeconds/float64(max(st.Requests, 1))*1000)
		}
		tw.Flush()
	}
	if rep.VerifyCPUSeconds > 0 && rep.Verify.Requests > 0 {
		fmt.Fprintf(out, "gateway CPU per verify: %.3f ms\n", rep.VerifyCPUSeconds/float64(rep.Verify.Requests)*1000)
	}
	if rep.PeakRSSBytes > 0 {
		fmt.Fprintf(out, "gateway peak RSS: %.0f MiB (read every %v, sends and verifies)\n", rep.PeakRSSBytes/(1<<20), rssEvery)
	}
	for _, p := range []Phase{rep.Send, rep.Verify} {
		if p.Requests == 0 && p.NoCode == 0 {
			continue
		}
		fmt.Fprintf(out, "%s answers by status: %s", p.Name, statusList(p.Statuses))
		if p.NoCode > 0 {
			fmt.Fprintf(out, "; %d sends with no code seen (not verified)", p.NoCode)
		}
		fmt.Fprintln(out)
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
}

func statusList(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
