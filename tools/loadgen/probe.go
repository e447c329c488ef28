package loadgen

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// probeSet tracks latency probes: when each was sent and when it was first
// seen in ClickHouse.
type probeSet struct {
	mu      sync.Mutex
	all     []*probeState
	byID    map[string]*probeState
	retries bool
}

type probeState struct {
	id, period string
	sent, seen time.Time
	// missed is the start of the last poll that did not return the probe
	// (zero: none after it was sent): the probe became queryable after it,
	// so missed − sent bounds its latency from below, as seen − sent bounds
	// it from above. The two are a poll interval apart at most.
	missed time.Time
}

func newProbeSet() *probeSet { return &probeSet{byID: map[string]*probeState{}} }

func (s *probeSet) add(p Probe, sent time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &probeState{id: p.ID, period: p.Period, sent: sent}
	s.all = append(s.all, st)
	s.byID[p.ID] = st
}

func (s *probeSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

func (s *probeSet) setRetried() {
	s.mu.Lock()
	s.retries = true
	s.mu.Unlock()
}

func (s *probeSet) retried() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retries
}

// pendingPeriods lists the periods of the probes not seen yet.
func (s *probeSet) pendingPeriods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.all {
		if p.seen.IsZero() && !containsStr(out, p.period) {
			out = append(out, p.period)
		}
	}
	return out
}

// markSeen records at, the start of a poll of period that returned ids, as
// the first time each of ids was visible, and as a time when the period's
// other probes sent before it were not visible yet.
func (s *probeSet) markSeen(period string, ids []string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if p, ok := s.byID[id]; ok && p.seen.IsZero() {
			p.seen = at
		}
	}
	for _, p := range s.all {
		if p.period == period && p.seen.IsZero() && p.sent.Before(at) {
			p.missed = at
		}
	}
}

// latencies returns seen − sent of every seen probe (the latency, to the
// poll interval above it), the lower bounds missed − sent (0 when no poll
// missed it), and how many were never seen.
func (s *probeSet) latencies() (upper, lower []time.Duration, unseen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.all {
		if p.seen.IsZero() {
			unseen++
			continue
		}
		upper = append(upper, max(0, p.seen.Sub(p.sent)))
		lo := time.Duration(0)
		if !p.missed.IsZero() {
			lo = max(0, p.missed.Sub(p.sent))
		}
		lower = append(lower, lo)
	}
	return upper, lower, unseen
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// sendProbes posts one probe event per ProbeInterval until sending is done
// (and at least MinProbes were sent) or ctx ends. A probe's clock starts just
// before its request; a failed probe stops the run like a failed batch.
func (r *runner) sendProbes(ctx context.Context, sendDone <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	for n := 0; ; n++ {
		if n >= r.cfg.MinProbes {
			select {
			case <-sendDone:
				return
			default:
			}
		}
		pr, err := r.gen.Probe(nil, time.Now())
		if err != nil {
			r.fail(err)
			return
		}
		r.probes.add(pr, time.Now())
		res, err := r.post.post(ctx, pr.Body)
		if res.retried() {
			r.probes.setRetried()
			r.stats.addRetries(res)
		}
		if err != nil {
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("probe %s: %w", pr.ID, err))
			}
			return
		}
		if res.accepted != 1 {
			r.fail(fmt.Errorf("probe %s was rejected: %s", pr.ID, strings.Join(res.rejections, "; ")))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollProbes looks every PollInterval for the probes not seen yet, and
// stamps each with the start of the first poll that returned it. The
// resolution of the latency is therefore the poll interval (plus the query
// time). It returns once every probe is seen and no more will come, or when
// ctx ends.
func (r *runner) pollProbes(ctx context.Context, probesDone <-chan struct{}) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	var lastWarn time.Time
	for {
		periods := r.probes.pendingPeriods()
		if len(periods) == 0 {
			select {
			case <-probesDone:
				if len(r.probes.pendingPeriods()) == 0 {
					return
				}
			default:
			}
		}
		for _, period := range periods {
			start := time.Now()
			ids, err := r.cfg.Store.ProbeIDs(ctx, r.cfg.Tenant, r.gen.ProbeCustomer(), period)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if time.Since(lastWarn) > 5*time.Second {
					r.log.Warn("probe poll failed", "err", err)
					lastWarn = time.Now()
				}
				continue
			}
			r.probes.markSeen(period, ids, start)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
