package ratelimit

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/tenants"
)

// TestLeasesKeepTheSharedBudgetExact: two processes (limiters) sharing one
// Redis, with a budget large enough to lease, together never pass more than
// the budget allows, waste at most one lease each, and answer most checks
// without a Redis round trip.
func TestLeasesKeepTheSharedBudgetExact(t *testing.T) {
	a, b := newEnv(t, Defaults{}), newEnv(t, Defaults{})
	const rate = 400 // per second; lease = 20
	p := principal(tenants.Limits{IngestRequestsPerSecond: rate})
	var mu sync.Mutex
	allowed := 0
	start := time.Now()
	var wg sync.WaitGroup
	for _, e := range []env{a, b} {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 400; i++ {
					d, err := e.l.check(context.Background(), Ingest, p, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	// GCRA passes at most the burst (= rate) plus what refills meanwhile.
	most := rate + int(math.Ceil(rate*elapsed))
	least := rate - 2*leaseSize(a.l.limit(Ingest, p)) // each process may idle on one lease
	if allowed > most || allowed < least {
		t.Fatalf("allowed %d in %.3fs; want between %d and %d", allowed, elapsed, least, most)
	}
	trips := histogramCount(t, a, Ingest) + histogramCount(t, b, Ingest) // refusals cost two: lease, then exact
	t.Logf("allowed %d of 1600 in %.3fs (bound %d..%d) with %d Redis round trips", allowed, elapsed, least, most, trips)
}

// TestLeasedChecksSkipRedis: within budget, one round trip serves a lease.
func TestLeasedChecksSkipRedis(t *testing.T) {
	e := newEnv(t, Defaults{})
	p := principal(tenants.Limits{IngestEventsPerSecond: 10000}) // lease 500 events
	for i := 0; i < 100; i++ {
		if d, err := e.l.check(context.Background(), IngestEvents, p, 50); err != nil || !d.Allowed {
			t.Fatalf("check %d: %+v %v", i, d, err)
		}
	}
	// 100 × 50 = 5,000 events; each refill takes 50 + 500: at most 10 trips.
	if trips := histogramCount(t, e, IngestEvents); trips > 10 {
		t.Errorf("%d Redis round trips for 100 checks within budget, want at most 10", trips)
	}
}

// TestSmallBudgetsAreNotLeased: below the lease threshold every check is a
// Redis check, so small limits are exact across processes.
func TestSmallBudgetsAreNotLeased(t *testing.T) {
	e := newEnv(t, Defaults{})
	p := principal(tenants.Limits{AdminRequestsPerMinute: leaseMinRate - 1})
	if n := leaseSize(e.l.limit(Admin, p)); n != 0 {
		t.Fatalf("lease of %d for a limit below %d", n, leaseMinRate)
	}
	for i := 0; i < 5; i++ {
		if _, err := e.l.check(context.Background(), Admin, p, 1); err != nil {
			t.Fatal(err)
		}
	}
	if trips := histogramCount(t, e, Admin); trips != 5 {
		t.Errorf("%d Redis round trips for 5 checks of a small budget, want 5", trips)
	}
}

func histogramCount(t *testing.T, e env, class Class) int {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kakin_ratelimit_check_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == string(class) {
					return int(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0
}
