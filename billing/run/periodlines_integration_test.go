package run

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// periodLinesCatalogue: a metered plan with a commitment of 1000 JPY a month
// and fee minimums due without usage (minimum_without_usage): calls at 1 JPY
// (no minimum), storage at 10 JPY per GB with a minimum of 300. Three
// customers in March 2019: c-idle sends nothing (storage minimum 300,
// true-up 1000 − 300 = 700), c-under sends 200 calls (storage minimum 300,
// true-up 1000 − 500 = 500), c-over sends 900 calls and 50 GB (1400: no
// minimum, no true-up).
const periodLinesCatalogue = `
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: JPY, fees: [calls, storage], commitment: 1000, minimum_without_usage: true}]}]
fees:
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: calls, rates: [{rate_table: one}]}]}
  - {code: storage, name: Storage, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: gb, rates: [{rate_table: ten}], minimum: 300}]}
elements:
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: call, aggregation: sum}]}
  - {code: gb, name: GB, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: GB, aggregation: sum}]}
rate_tables:
  - {code: one, name: One, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 1}]}
  - {code: ten, name: Ten, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 10}]}
basic_contracts:
  - {id: b-idle, customer: c-idle, start_date: "2019-01-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
  - {id: b-under, customer: c-under, start_date: "2019-01-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
  - {id: b-over, customer: c-over, start_date: "2019-01-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
service_contracts:
  - {id: k-idle, customer: c-idle, basic_contract: b-idle, service: svc, start_date: "2019-03-01", plans: [{plan: p, start_date: "2019-03-01"}]}
  - {id: k-under, customer: c-under, basic_contract: b-under, service: svc, start_date: "2019-03-01", plans: [{plan: p, start_date: "2019-03-01"}]}
  - {id: k-over, customer: c-over, basic_contract: b-over, service: svc, start_date: "2019-03-01", plans: [{plan: p, start_date: "2019-03-01"}]}
`

// raterCatalogues serves the test's catalogues to the rater's engines.
type raterCatalogues struct{ cats catalogues }

func (r raterCatalogues) Tenants() []string {
	var out []string
	for t := range r.cats {
		out = append(out, t)
	}
	return out
}
func (r raterCatalogues) Version(string) uint64                 { return 1 }
func (r raterCatalogues) Catalogue(t string) *catalog.Catalogue { return r.cats[t] }
func (r raterCatalogues) Subscribe() (<-chan struct{}, func())  { return make(chan struct{}), func() {} }

// rated collects what an emitter writes, as usage.rated would.
type rated struct{ msgs []kafka.Message }

func (r *rated) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	r.msgs = append(r.msgs, msgs...)
	return nil
}

// emitPeriodLines runs a fresh fixed-fee emitter (a restarted rater) at now
// against the stored records and stores what it writes in rated_usage, as
// the aggregator does. It returns the lines written.
func (e *env) emitPeriodLines(tenant string, now time.Time) []schemas.RatedLine {
	e.t.Helper()
	src := raterCatalogues{cats: catalogues{tenant: e.cats[tenant]}}
	engines := rater.NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	out := &rated{}
	f := rater.NewFixedFees(src, engines, out, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler)).
		WithRecords(e.records).WithClock(func() time.Time { return now })
	if err := f.Emit(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var lines []schemas.RatedLine
	for _, m := range out.msgs {
		if m.Topic != schemas.TopicRated {
			e.t.Fatalf("emitted to %s: %s", m.Topic, m.Value)
		}
		var l schemas.RatedLine
		if err := schemas.UnmarshalRatedLine(m.Value, &l); err != nil {
			e.t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return nil
	}
	b, err := e.conn.PrepareBatch(context.Background(), usagedb.InsertInto("rated_usage"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := usagedb.AppendRated(b, lines); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		e.t.Fatal(err)
	}
	return lines
}

// streamPeriodLines reads the stream's period lines (idle minimums and
// true-ups) of a tenant from rated_usage FINAL: item → amount, and how many
// rows FINAL keeps.
func (e *env) streamPeriodLines(tenant string) (map[string]string, int) {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(),
		"SELECT item, amount FROM rated_usage FINAL WHERE tenant = ? AND position(item, '#') > 0", tenant)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out, n := map[string]string{}, 0
	for rows.Next() {
		var item string
		var amount = decimalOf("0")
		if err := rows.Scan(&item, &amount); err != nil {
			e.t.Fatal(err)
		}
		out[item] = amount.String()
		n++
	}
	return out, n
}

// TestPeriodLinesStreamEqualsBatch (issue 19 items 6 and 11 in the stream):
// once March has ended, the rater's fixed-fee emitter writes each
// contract's idle fee minimums and commitment true-up computed from the
// stored records — an idle period gets its minimum, a period under the
// commitment gets commitment − usage, one above it nothing (its would-be
// lines at zero) — a restarted emitter writes the same line ids again
// (rated_usage keeps one each), the billing run computes the same lines for
// the receivables, and reconciliation shows no difference; late usage of
// the idle fee replaces its idle minimum line by zero (the fee's minimum is
// then part of its metered charge), in the stream and the batch alike.
func TestPeriodLinesStreamEqualsBatch(t *testing.T) {
	e := newEnv(t)
	const tenant = "commit"
	c, err := catalog.Decode(strings.NewReader(periodLinesCatalogue))
	if err != nil {
		t.Fatal(err)
	}
	c.Tenant = tenant
	e.cats[tenant] = c
	march := time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)
	rec := func(id, customer, contract, element, qty string, day int) schemas.UsageEvent {
		at := march.AddDate(0, 0, day-1).Add(9 * time.Hour)
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Contract: contract, Element: element,
			Quantity: dec(qty), Time: at, ReceivedAt: at.Add(time.Second)}
	}
	evs := []schemas.UsageEvent{
		rec("u1", "c-under", "k-under", "calls", "200", 5),
		rec("o1", "c-over", "k-over", "calls", "900", 6),
		rec("o2", "c-over", "k-over", "gb", "50", 7),
	}
	e.storeRecords(evs...)
	e.streamLines(tenant, pricing.PeriodOfMonth(2019, time.March), evs, nil)

	// During March nothing is emitted for it: its usage is not complete.
	if got := e.emitPeriodLines(tenant, march.AddDate(0, 0, 30).Add(23*time.Hour)); len(got) != 0 {
		t.Fatalf("emitted during March: %+v", got)
	}
	e.now = time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC)
	e.emitPeriodLines(tenant, e.now)
	e.emitPeriodLines(tenant, e.now.Add(time.Minute)) // a restarted rater: the same ids again
	want := map[string]string{
		"k-idle/storage#minimum": "300", "k-idle/#commitment": "700",
		"k-under/storage#minimum": "300", "k-under/#commitment": "500",
		"k-over/storage#minimum": "0", "k-over/#commitment": "0",
	}
	got, rows := e.streamPeriodLines(tenant)
	if rows != len(want) || len(got) != len(want) {
		t.Errorf("rated_usage FINAL keeps %d period lines %v, want one of each of %v", rows, got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("stream %s = %q, want %s", k, got[k], w)
		}
	}

	res := e.run(tenant, "2019-03", "job_p1")
	if res.Differences != 0 {
		t.Errorf("%d reconciliation differences, want 0", res.Differences)
	}
	diffs := map[string]billingdb.Diff{}
	if err := e.store.Reconciliation(context.Background(), tenant, "job_p1", "", func(d billingdb.Diff) error {
		diffs[d.Customer+" "+d.Item] = d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"c-idle k-idle/storage#minimum", "c-idle k-idle/#commitment", "c-under k-under/#commitment"} {
		if d := diffs[k]; d.Outcome != billingdb.Match || d.Batch.IsZero() {
			t.Errorf("reconciliation %s: %+v", k, d)
		}
	}
	// The receivables bill them: 1000 before tax for c-idle and c-under
	// (the commitment), 1400 for c-over.
	for basic, want := range map[string]string{"b-idle": "1000", "b-under": "1000", "b-over": "1400"} {
		r, err := e.store.Get(context.Background(), tenant, billing.ReceivableID(tenant, basic, "2019-03"))
		if err != nil || r == nil {
			t.Fatalf("receivable of %s: %v", basic, err)
		}
		if !r.Subtotal.Equal(decimalOf(want)) {
			t.Errorf("%s: subtotal %s, want %s", basic, r.Subtotal, want)
		}
	}

	// Late usage: c-idle stores 10 GB of March (100 JPY, charged at the
	// fee's minimum of 300 now that the period has usage). The emitter
	// replaces the idle minimum line by zero; the true-up stays 700 (1000 −
	// the metered 300); the batch agrees.
	late := rec("i1", "c-idle", "k-idle", "gb", "10", 20)
	late.ReceivedAt = e.now
	e.storeRecords(late)
	e.streamLines(tenant, pricing.PeriodOfMonth(2019, time.March), []schemas.UsageEvent{late}, nil)
	e.now = e.now.Add(time.Hour)
	e.emitPeriodLines(tenant, e.now)
	got, _ = e.streamPeriodLines(tenant)
	if got["k-idle/storage#minimum"] != "0" || got["k-idle/#commitment"] != "700" {
		t.Errorf("after late usage: %v", got)
	}
	if res := e.run(tenant, "2019-03", "job_p2"); res.Differences != 0 {
		t.Errorf("after late usage: %d reconciliation differences, want 0", res.Differences)
	}
}
