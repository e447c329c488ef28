package run

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
)

// weeklyCatalogue: one basic contract billed weekly (weeks from Monday,
// UTC) with a fixed weekly fee of 700 JPY in advance, pro-rated by whole
// days (the contract starts on Wednesday 2019-03-06: its first week is
// 5/7 × 700 = 500), and calls at 1 JPY.
const weeklyCatalogue = `
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [base, calls]}]}]
plans:
  - {code: base, name: Base, versions: [{valid_from: "2019-01-01T00:00:00Z", type: fixed, currency: JPY, fees: [weekly-fee]}]}
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: JPY, fees: [calls]}]}
fees:
  - {code: weekly-fee, name: Weekly fee, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: fixed, amount: 700, recurrence: weekly, proration: actual_days, timing: advance}]}
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: calls, rates: [{rate_table: one}]}]}
elements:
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: call, aggregation: sum}]}
rate_tables:
  - {code: one, name: One, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 1}]}
basic_contracts:
  - {id: b-w, customer: c-w, start_date: "2019-03-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up, billing_period: weekly}
service_contracts:
  - {id: k-base, customer: c-w, basic_contract: b-w, service: svc, start_date: "2019-03-06", plans: [{plan: base, start_date: "2019-03-06"}]}
  - {id: k-calls, customer: c-w, basic_contract: b-w, service: svc, start_date: "2019-03-06", plans: [{plan: calls, start_date: "2019-03-06"}]}
`

// loadYAML decodes a test catalogue for the tenant.
func (e *env) loadYAML(tenant, doc string) {
	e.t.Helper()
	c, err := catalog.Decode(strings.NewReader(doc))
	if err != nil {
		e.t.Fatal(err)
	}
	c.Tenant = tenant
	e.cats[tenant] = c
}

// streamMetered writes what the streaming rater writes for records (each
// record's lines, same engine), without fixed fees: those come from the
// fixed-fee emitter under test.
func (e *env) streamMetered(tenant string, evs []schemas.UsageEvent) {
	e.t.Helper()
	eng, err := pricing.Compile(e.cats[tenant])
	if err != nil {
		e.t.Fatal(err)
	}
	batch := eng.RatePeriod(evs)
	if len(batch.Unrated) > 0 {
		e.t.Fatalf("unrated: %+v", batch.Unrated[0].Reason)
	}
	var lines []schemas.RatedLine
	for _, l := range batch.Lines {
		x := evs[l.Event]
		item := l.Key.Contract + "/" + l.Key.Item()
		lines = append(lines, schemas.RatedLine{LineID: schemas.LineID(tenant, x.ID, item), Event: x, Item: item,
			Amount: l.Line.Decimal(), Currency: l.Currency, Period: l.Key.Period.String(), RatedAt: e.now})
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
}

// lineSummary renders emitted lines as sorted "period item amount".
func lineSummary(ls []schemas.RatedLine) string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Period+" "+l.Item+" "+l.Amount.String())
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// TestWeeklyPeriodsThroughTheStreamAndTheRun (issue 19 item 1 outside the
// engine): a weekly-billed contract's fixed fees are emitted by the
// stream for the current and the previous week (not a week starting on
// another day, as month arithmetic on a weekly id gave), the billing run
// makes one receivable per week whose figures the stream's lines reconcile
// with (0 differences), closing a week and then the next numbers one
// receivable each, late usage of a closed week is booked as an adjustment
// by the next week's run, only the latest closed week can be reopened, and
// the automatic run is due for a week a grace after it ended.
func TestWeeklyPeriodsThroughTheStreamAndTheRun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const tenant = "weekly"
	e.loadYAML(tenant, weeklyCatalogue)
	const w1, w2, w3 = "2019-03-04/P1W", "2019-03-11/P1W", "2019-03-18/P1W"
	at := func(day, hour int) time.Time { return time.Date(2019, 3, day, hour, 0, 0, 0, time.UTC) }
	rec := func(id, qty string, day int) schemas.UsageEvent {
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c-w", Contract: "k-calls", Element: "calls",
			Quantity: dec(qty), Time: at(day, 9), ReceivedAt: at(day, 9).Add(time.Second)}
	}
	evs := []schemas.UsageEvent{rec("a", "10", 7), rec("b", "20", 13)}
	e.now = at(13, 10)
	e.storeRecords(evs...)
	e.streamMetered(tenant, evs)

	// The stream: on Tuesday of the second week, the fees of that week
	// (advance) and of the week before.
	got := lineSummary(e.emitPeriodLines(tenant, at(12, 10)))
	if want := w1 + " k-base/weekly-fee 500; " + w2 + " k-base/weekly-fee 700"; got != want {
		t.Errorf("emitted on 2019-03-12:\n got %s\nwant %s", got, want)
	}
	got = lineSummary(e.emitPeriodLines(tenant, at(19, 10)))
	if want := w2 + " k-base/weekly-fee 700; " + w3 + " k-base/weekly-fee 700"; got != want {
		t.Errorf("emitted on 2019-03-19:\n got %s\nwant %s", got, want)
	}

	// The automatic run: a week is due a day (the default grace) after it
	// ended.
	a := NewAuto(e.svc, AutoOptions{Jobs: jobs.NewStore(e.conn), Tenants: func() []string { return []string{tenant} }})
	for _, tt := range []struct {
		now  time.Time
		want string
	}{
		{at(18, 23).Add(59*time.Minute + 59*time.Second), "[" + w1 + "]"},
		{at(19, 0), "[" + w2 + "]"},
	} {
		if due, err := a.Due(ctx, tenant, tt.now); err != nil || fmt.Sprint(due) != tt.want {
			t.Errorf("due at %s: %v %v, want %s", tt.now, due, err, tt.want)
		}
	}

	// The run: one receivable per week, reconciled with the stream.
	e.now = at(20, 0)
	for period, want := range map[string]string{w1: "510", w2: "720"} {
		res := e.run(tenant, period, "job_"+period[:10])
		if res.Differences != 0 || res.Receivables != 1 {
			t.Errorf("run %s: %d receivables, %d reconciliation differences; want 1 and 0", period, res.Receivables, res.Differences)
		}
		r, err := e.store.Get(ctx, tenant, billing.ReceivableID(tenant, "b-w", period))
		if err != nil || r == nil {
			t.Fatalf("receivable of %s: %v %v", period, r, err)
		}
		if !r.Subtotal.Equal(dec(want)) || r.Period != period {
			t.Errorf("%s: period %s subtotal %s, want %s", period, r.Period, r.Subtotal, want)
		}
	}

	// Close the first week; late usage of it is then the second week's
	// adjustment.
	c1, err := e.svc.Close(ctx, tenant, w1, "test")
	if err != nil || c1.Finalised != 1 || c1.Run.Differences != 0 {
		t.Fatalf("close %s: %+v %v", w1, c1, err)
	}
	late := rec("late", "5", 8)
	late.ReceivedAt = e.now
	e.now = e.now.Add(time.Hour)
	e.storeRecords(late)
	e.streamMetered(tenant, []schemas.UsageEvent{late})
	c2, err := e.svc.Close(ctx, tenant, w2, "test")
	if err != nil || c2.Finalised != 1 || c2.FirstSeq != c1.LastSeq+1 {
		t.Fatalf("close %s: %+v %v (first close %+v)", w2, c2, err, c1)
	}
	id2 := billing.ReceivableID(tenant, "b-w", w2)
	var adj []string
	for _, l := range e.lines(tenant, id2) {
		if l.Kind == billing.KindAdjustment {
			adj = append(adj, l.ChargePeriod+" "+l.Item+" "+l.Amount.String())
		}
	}
	if fmt.Sprint(adj) != "["+w1+" calls 5]" {
		t.Errorf("adjustments of %s: %v, want the late 5 calls of %s", w2, adj, w1)
	}
	// Reopen: only the latest closed week.
	if _, err := e.svc.Reopen(ctx, tenant, w1, "fix", "test"); !errors.Is(err, ErrNotLatest) {
		t.Errorf("reopen %s while %s is closed: %v, want ErrNotLatest", w1, w2, err)
	}
	if n, err := e.svc.Reopen(ctx, tenant, w2, "fix", "test"); err != nil || n != 1 {
		t.Errorf("reopen %s: %d %v", w2, n, err)
	}
}

// A monthly period ends after a week of its month: the latest closed
// period is ordered by end, not by label text.
func TestLatestClosedOrdersByEnd(t *testing.T) {
	for _, tt := range []struct {
		closed []string
		want   string
	}{
		{[]string{"2019-03", "2019-03-04/P1W"}, "2019-03"},
		{[]string{"2019-03", "2019-03-25/P1W"}, "2019-03-25/P1W"}, // ends 2019-03-31 as well; then by label
		{[]string{"2019-02", "2019-03-04/P1W"}, "2019-03-04/P1W"},
		{[]string{"2019-03-04/P1W", "2019-03-11/P1W"}, "2019-03-11/P1W"},
		{[]string{"2019-03-09", "2019-03-04/P1W"}, "2019-03-04/P1W"},
		{[]string{"2019-03-11", "2019-03-04/P1W"}, "2019-03-11"},
	} {
		m := map[string]bool{}
		for _, p := range tt.closed {
			m[p] = true
		}
		if got := latestClosed(m); got != tt.want {
			t.Errorf("latest of %v: %s, want %s", tt.closed, got, tt.want)
		}
	}
}
