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

// markSeen records at as the first time each of ids was visible.
func (s *probeSet) markSeen(ids []string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if p, ok := s.byID[id]; ok && p.seen.IsZero() {
			p.seen = at
		}
	}
}

// latencies returns seen − sent of every seen probe and how many were never
// seen.
func (s *probeSet) latencies() ([]time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	unseen := 0
	for _, p := range s.all {
		if p.seen.IsZero() {
			unseen++
			continue
		}
		out = append(out, max(0, p.seen.Sub(p.sent)))
	}
	return out, unseen
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
			r.probes.markSeen(ids, start)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
