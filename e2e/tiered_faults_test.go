package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// tieredCatalogue: graduated calls (1 yen up to 1,000 a month, 0.5 up to
// 5,000, then 0.1), so every line depends on the customer's running total.
const tieredCatalogue = `
services: [{code: api, name: API, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: service}]}]
elements: [{code: calls, name: Calls, versions: [{valid_from: 2025-01-01T00:00:00Z, unit: call, aggregation: sum}]}]
rate_tables:
  - code: tiers
    name: Tiers
    versions:
      - valid_from: 2025-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 1000, unit_price: 1}, {up_to: 5000, unit_price: 0.5}, {unit_price: 0.1}]
fees: [{code: calls, name: Calls, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: metered, element: calls, rates: [{rate_table: tiers}]}]}]
plans: [{code: std, name: Std, versions: [{valid_from: 2025-01-01T00:00:00Z, type: metered, currency: JPY, fees: [calls]}]}]
`

// TestCrashTieredRater kills the rater (running tiers in Redis) and the
// aggregator with SIGKILL twice in the middle of a backlog: every customer's
// lines must still sum exactly to the batch recomputation of its period —
// no tier step lost, none taken twice.
func TestCrashTieredRater(t *testing.T) {
	e := newEnv(t, e2ePrices)
	e.extraEnv = []string{"KAKIN_BATCH_SIZE=100"} // many small batches: a kill lands mid-stream
	v := apitest.NewValidator(t)
	front := e.start("front", "ingest,dedupe,admin")
	c := tenantAPI{&api{t: t, base: front.url, http: v.Client()}, "tiered"}

	const customers = 12
	file := tieredCatalogue + "basic_contracts:\n"
	for i := range customers {
		id := fmt.Sprintf("c%02d", i)
		if r := c.call("POST", "/v1/customers", fmt.Sprintf(`{"id":%q}`, id)); r.status != 201 {
			t.Fatalf("create customer: %d %s", r.status, r.body)
		}
		file += fmt.Sprintf("  - {id: b-%s, customer: %s, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}\n", id, id)
	}
	file += "service_contracts:\n"
	for i := range customers {
		id := fmt.Sprintf("c%02d", i)
		file += fmt.Sprintf("  - {id: s-%s, customer: %s, basic_contract: b-%s, service: api, start_date: 2026-01-01, plans: [{plan: std, start_date: 2026-01-01}]}\n", id, id, id)
	}
	path := filepath.Join(e.dir, "tiered.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	e.output(t, "catalog", "apply", "--tenant", "tiered", "-f", path, "--yes")

	// The expected totals: the engine's batch recomputation of all events.
	cat, err := catalog.Decode(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pricing.Compile(cat)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var events []schemas.UsageEvent
	var bodies [][]byte
	var body strings.Builder
	for i := range 6000 {
		ev := schemas.UsageEvent{Tenant: "tiered", ID: fmt.Sprintf("t-%05d", i), Customer: fmt.Sprintf("c%02d", rng.IntN(customers)),
			Element: "calls", Quantity: decimal.New(rng.Int64N(3000), -1),
			Time: time.Date(2026, 11, 1+rng.IntN(20), rng.IntN(24), 0, 0, 0, time.UTC)}
		events = append(events, ev)
		fmt.Fprintf(&body, `{"id":%q,"customer":%q,"element":"calls","quantity":"%s","time":%q}`+"\n",
			ev.ID, ev.Customer, ev.Quantity, ev.Time.Format(time.RFC3339))
		if (i+1)%100 == 0 {
			bodies = append(bodies, []byte(body.String()))
			body.Reset()
		}
	}
	batch := eng.RatePeriod(events)
	if len(batch.Unrated) != 0 {
		t.Fatalf("the workload has unratable events: %+v", batch.Unrated[0].Reason)
	}
	want := decimal.Zero
	for _, l := range batch.Lines {
		want = want.Add(l.Line.Decimal())
	}
	wantLines := uint64(len(batch.Lines))

	half := len(bodies) / 2
	sendAll(t, front.url, "tiered", workload{bodies: bodies[:half]}, func(int) {})
	rater := e.startMember("rater", "rater", "kakin-rater")
	agg := e.startMember("aggregator", "aggregator", "kakin-aggregator")
	ctx := context.Background()
	for round, share := range []uint64{4, 2} {
		target := wantLines / share
		deadline := time.Now().Add(time.Minute)
		for {
			r, err := e.rated(ctx, "tiered")
			if err == nil && r.Lines >= target {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: never reached %d lines (%v); %s", round, target, err, e.lags(ctx))
			}
			time.Sleep(10 * time.Millisecond)
		}
		rater.kill()
		agg.kill()
		r, _ := e.rated(ctx, "tiered")
		t.Logf("crash %d: killed rater and aggregator with %d of %d lines stored", round+1, r.Lines, wantLines)
		if r.Lines == wantLines {
			t.Fatalf("crash %d came after the stream was done; the test proves nothing", round+1)
		}
		if round == 0 {
			sendAll(t, front.url, "tiered", workload{bodies: bodies[half:]}, func(int) {})
		}
		rater = e.startMember("rater", "rater", "kakin-rater")
		agg = e.startMember("aggregator", "aggregator", "kakin-aggregator")
	}
	waitFor(t, 2*time.Minute, "exact tiered totals", func() (bool, string) {
		r, err := e.rated(ctx, "tiered")
		if err != nil {
			return false, err.Error()
		}
		return r.Lines == wantLines && r.Amount.Equal(want), fmt.Sprintf("lines %d/%d amount %s/%s; %s", r.Lines, wantLines, r.Amount, want, e.lags(ctx))
	})
	if u := e.count(ctx, "SELECT count() FROM usage_unrated FINAL WHERE tenant = 'tiered'"); u != 0 {
		t.Errorf("%d records unrated, want 0", u)
	}
}
