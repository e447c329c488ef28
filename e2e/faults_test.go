package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

const faultPrices = `{"tenants": {
  "stream": {"currency": "JPY", "rounding": "half_up", "time_zone": "Asia/Tokyo", "any_customer": true,
             "prices": {"api_calls": "0.037", "transfer_gb": "9.81", "sms": "3"}}
}}`

// workload is a generated workload: NDJSON request bodies, and what ClickHouse
// must hold once all of them are through the pipeline.
type workload struct {
	bodies     [][]byte
	lines      uint64          // unique events, all ratable
	amount     decimal.Decimal // sum of their rounded amounts
	duplicates uint64          // re-sent events
}

// genStream makes n unique events over customers customers, plus re-sends of
// earlier events (same id, same payload) at dupShare, in bodies of batch records.
func genStream(t *testing.T, e *env, tenant string, n, customers, batch int, dupShare float64, seed uint64) workload {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	elements := []string{"api_calls", "transfer_gb", "sms"}
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var s workload
	var sent []string
	var cur strings.Builder
	inBody := 0
	flush := func() {
		if inBody > 0 {
			s.bodies = append(s.bodies, []byte(cur.String()))
			cur.Reset()
			inBody = 0
		}
	}
	add := func(line string) {
		cur.WriteString(line)
		cur.WriteByte('\n')
		if inBody++; inBody == batch {
			flush()
		}
	}
	for i := 0; i < n; i++ {
		ev := schemas.UsageEvent{
			Tenant:   tenant,
			ID:       fmt.Sprintf("ev-%d-%06d", seed, i),
			Customer: fmt.Sprintf("cust-%03d", rng.IntN(customers)),
			Element:  elements[rng.IntN(len(elements))],
			Quantity: decimal.New(rng.Int64N(1_000_000), -int32(rng.IntN(4))),
			Time:     base.Add(time.Duration(rng.Int64N(int64(50 * 24 * time.Hour)))).Truncate(time.Second),
		}
		o := e.pl.Rate(&ev, time.Now())
		if o.Line == nil {
			t.Fatalf("generated an unratable event: %+v", o.Unrated)
		}
		s.lines++
		s.amount = s.amount.Add(o.Line.Amount)
		line := fmt.Sprintf(`{"id":%q,"customer":%q,"element":%q,"quantity":"%s","time":%q}`,
			ev.ID, ev.Customer, ev.Element, ev.Quantity, ev.Time.Format(time.RFC3339))
		sent = append(sent, line)
		add(line)
		if rng.Float64() < dupShare {
			add(sent[rng.IntN(len(sent))])
			s.duplicates++
		}
	}
	flush()
	return s
}

// sendAll posts the bodies in order, calling at(i) before body i.
func sendAll(t *testing.T, url, tenant string, s workload, at func(i int)) {
	t.Helper()
	for i, b := range s.bodies {
		at(i)
		code, resp := post(t, url, tenant, b)
		if code != 202 || resp.Rejected != 0 {
			t.Fatalf("body %d: status %d, %d rejected", i, code, resp.Rejected)
		}
	}
}

// waitExact waits until ClickHouse holds exactly the stream's lines, amount and
// duplicates for tenant, and fails naming the difference otherwise.
func waitExact(t *testing.T, e *env, tenant string, s workload, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, timeout, "exact totals", func() (bool, string) {
		r, err := e.rated(ctx, tenant)
		if err != nil {
			return false, err.Error()
		}
		d := e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = ?", tenant)
		state := fmt.Sprintf("lines %d/%d amount %s/%s duplicates %d/%d; %s", r.Lines, s.lines, r.Amount, s.amount, d, s.duplicates, e.lags(ctx))
		if r.Lines > s.lines || d > s.duplicates {
			t.Fatalf("counted too much: %s", state)
		}
		return r.Lines == s.lines && r.Amount.Equal(s.amount) && d == s.duplicates, state
	})
	u := e.count(ctx, "SELECT count() FROM usage_unrated FINAL WHERE tenant = ?", tenant)
	if u != 0 {
		t.Errorf("%d records unrated, want 0", u)
	}
	raw := e.count(ctx, "SELECT count() FROM rated_usage WHERE tenant = ?", tenant)
	t.Logf("exact: %d lines, amount %s, %d duplicates; %d physical rows before merge (redeliveries replaced, not added)",
		s.lines, s.amount, s.duplicates, raw)
}

// TestCrashRaterAndAggregator kills the rater and the aggregator with SIGKILL
// twice while they work through a backlog and restarts them: the totals must
// come out exact, nothing lost and nothing counted twice.
func TestCrashRaterAndAggregator(t *testing.T) {
	e := newEnv(t, faultPrices)
	e.extraEnv = []string{"KAKIN_BATCH_SIZE=200"} // many small batches: a kill lands mid-stream
	s := genStream(t, e, "stream", 30000, 150, 250, 0.03, 1)
	front := e.start("front", "ingest,dedupe,admin")
	half := len(s.bodies) / 2
	sendAll(t, front.url, "stream", workload{bodies: s.bodies[:half]}, func(int) {})
	rater := e.startMember("rater", "rater", "kakin-rater")
	agg := e.startMember("aggregator", "aggregator", "kakin-aggregator")
	ctx := context.Background()
	for round, share := range []uint64{4, 2} { // crash at 1/4 and at 1/2 of the lines stored
		target := s.lines / share
		deadline := time.Now().Add(time.Minute)
		for {
			r, err := e.rated(ctx, "stream")
			if err == nil && r.Lines >= target {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: never reached %d lines (%v)", round, target, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		rater.kill()
		agg.kill()
		r, _ := e.rated(ctx, "stream")
		t.Logf("crash %d: killed rater and aggregator with %d of %d lines stored", round+1, r.Lines, s.lines)
		if r.Lines == s.lines {
			t.Fatalf("crash %d came after the stream was done; the test proves nothing", round+1)
		}
		if round == 0 {
			sendAll(t, front.url, "stream", workload{bodies: s.bodies[half:]}, func(int) {})
		}
		rater = e.startMember("rater", "rater", "kakin-rater")
		agg = e.startMember("aggregator", "aggregator", "kakin-aggregator")
	}
	waitExact(t, e, "stream", s, 2*time.Minute)
}

// TestRebalance adds a second dedupe and a second aggregator in the middle of
// a stream, then stops one of each again: consumption goes on and the totals
// are exact.
func TestRebalance(t *testing.T) {
	e := newEnv(t, faultPrices)
	s := genStream(t, e, "stream", 20000, 150, 250, 0.03, 2)
	front := e.start("front", "ingest,admin")
	d1 := e.startMember("dedupe-1", "dedupe", "kakin-dedupe")
	e.startMember("rater", "rater", "kakin-rater")
	a1 := e.startMember("aggregator-1", "aggregator", "kakin-aggregator")
	var d2, a2 *proc
	start := time.Now()
	sendAll(t, front.url, "stream", s, func(i int) {
		switch i {
		case len(s.bodies) / 3:
			d2 = e.startMember("dedupe-2", "dedupe", "kakin-dedupe")
			a2 = e.startMember("aggregator-2", "aggregator", "kakin-aggregator")
		case 2 * len(s.bodies) / 3:
			d1.stop(t) // graceful: leaves the group at once
			a2.kill()  // abrupt: its partitions move after the session timeout
		}
	})
	_ = d2
	_ = a1
	waitExact(t, e, "stream", s, 2*time.Minute)
	t.Logf("stream of %d bodies fully queryable %s after the first post", len(s.bodies), time.Since(start).Round(time.Millisecond))
}
