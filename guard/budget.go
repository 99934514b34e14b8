package guard

import (
	"fmt"
	"sync"
	"time"
)

// Budget windows: an hour in twelve steps of five minutes, a day in
// twenty-four steps of an hour.
const (
	hourSteps = 12
	hourStep  = int64(5 * time.Minute)
	daySteps  = 24
	dayStep   = int64(time.Hour)
)

// budgetState counts one client's (or one client's and country's) sends
// over the last hour and day. 184 bytes; one per configured cap, so their
// number is set by the configuration.
type budgetState struct {
	mu      sync.Mutex
	hourAt  int64
	hour    [hourSteps]uint32
	dayAt   int64
	day     [daySteps]uint32
	logAt   int64 // last log line about this budget
	refused int   // refusals since that line
}

func slide(counts []uint32, at *int64, now, step int64) {
	idx := now / step
	n := int64(len(counts))
	if idx-*at >= n {
		clear(counts)
		*at = idx
		return
	}
	for *at < idx {
		*at++
		counts[ring(*at, n)] = 0
	}
}

func sum(counts []uint32) int {
	s := 0
	for _, c := range counts {
		s += int(c)
	}
	return s
}

// take counts a send at now unless it would pass l; then it returns why,
// and counts it only when count is true (monitor mode: it goes out).
func (b *budgetState) take(now int64, l Limits, count bool) (reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	slide(b.hour[:], &b.hourAt, now, hourStep)
	slide(b.day[:], &b.dayAt, now, dayStep)
	if h := sum(b.hour[:]); l.PerHour > 0 && h >= l.PerHour {
		reason = fmt.Sprintf("per_hour %d reached (%d sends in the last hour)", l.PerHour, h)
	} else if d := sum(b.day[:]); l.PerDay > 0 && d >= l.PerDay {
		reason = fmt.Sprintf("per_day %d reached (%d sends in the last day)", l.PerDay, d)
	}
	if reason == "" || count {
		b.hour[ring(b.hourAt, hourSteps)]++
		b.day[ring(b.dayAt, daySteps)]++
	}
	return reason
}

// undo takes back a send counted at at.
func (b *budgetState) undo(at int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := ring(at/hourStep, hourSteps); at/hourStep <= b.hourAt && b.hourAt-at/hourStep < hourSteps && b.hour[i] > 0 {
		b.hour[i]--
	}
	if i := ring(at/dayStep, daySteps); at/dayStep <= b.dayAt && b.dayAt-at/dayStep < daySteps && b.day[i] > 0 {
		b.day[i]--
	}
}

// shouldLog reports whether a refusal at now gets a log line (one per
// budget per logEvery) and how many refusals the line stands for.
func (b *budgetState) shouldLog(now int64) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refused++
	if b.logAt != 0 && now-b.logAt < int64(logEvery) {
		return false, 0
	}
	n := b.refused
	b.logAt, b.refused = now, 0
	return true, n
}

// clientBudget is one client's budget states: overall and per country.
type clientBudget struct {
	limits    Limits
	overall   *budgetState // nil without an overall cap
	countries map[string]*budgetState
	climits   map[string]Limits
}

// buildBudgets makes the budget states of cfg, reusing the states of old
// for the caps that are still configured, so that a reload keeps counts.
func buildBudgets(cfg map[string]ClientRules, old map[string]*clientBudget) map[string]*clientBudget {
	out := map[string]*clientBudget{}
	for id, r := range cfg {
		b := r.Budget
		prev := old[id]
		cb := &clientBudget{limits: Limits{PerHour: b.PerHour, PerDay: b.PerDay}, countries: map[string]*budgetState{},
			climits: map[string]Limits{}}
		if b.PerHour > 0 || b.PerDay > 0 {
			cb.overall = &budgetState{}
			if prev != nil && prev.overall != nil {
				cb.overall = prev.overall
			}
		}
		for iso, l := range b.Countries {
			if l.PerHour <= 0 && l.PerDay <= 0 {
				continue
			}
			st := &budgetState{}
			if prev != nil && prev.countries[iso] != nil {
				st = prev.countries[iso]
			}
			cb.countries[iso], cb.climits[iso] = st, l
		}
		if cb.overall != nil || len(cb.countries) > 0 {
			out[id] = cb
		}
	}
	return out
}
