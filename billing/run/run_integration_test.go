package run

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
)

func (e *env) receivable(tenant, period string) *billingdb.Stored {
	e.t.Helper()
	r, err := e.store.Get(context.Background(), tenant, billing.ReceivableID(tenant, "b1", period))
	if err != nil {
		e.t.Fatal(err)
	}
	if r == nil {
		e.t.Fatalf("no receivable of %s", period)
	}
	return r
}

func (e *env) lines(tenant, id string) []billing.Line {
	e.t.Helper()
	ls, err := e.store.Lines(context.Background(), tenant, id, nil, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return ls
}

// A run recomputes November from the stored records with the catalogue
// (the receivable of billing.TestMonthReceivable, 12,063 JPY, 9 lines), the
// reconciliation with the stream's lines finds no difference, and a second
// run with the same inputs writes nothing: the stored rows stay
// byte-identical.
func TestRunWritesDraftsAndIsIdempotent(t *testing.T) {
	e := newEnv(t)
	e.loadCatalogue("acme")
	nov := november("acme")
	e.storeRecords(nov...)
	e.streamLines("acme", pricing.PeriodOfMonth(2026, time.November), nov, nil)

	res := e.run("acme", "2026-11", "job_1")
	if res.Receivables != 1 || res.Lines != 9 || res.Differences != 0 {
		t.Fatalf("result %+v", res)
	}
	r := e.receivable("acme", "2026-11")
	if r.Status != billing.StatusDraft || !r.Total.Equal(dec("12063")) || !r.TaxExclusive.Equal(dec("810")) ||
		!r.TaxIncluded.Equal(dec("187")) || r.NumberSeq != 0 || r.LineCount != 9 || len(r.Taxes) != 4 {
		t.Fatalf("receivable %+v", r)
	}
	ls := e.lines("acme", r.ID)
	if len(ls) != 9 || ls[0].Item != "base-fee" || !ls[0].Amount.Equal(dec("1900")) || ls[8].Kind != billing.KindTax {
		t.Fatalf("lines %+v", ls)
	}
	var diffs []billingdb.Diff
	if err := e.store.Reconciliation(context.Background(), "acme", "job_1", "", func(d billingdb.Diff) error {
		diffs = append(diffs, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 6 {
		t.Errorf("%d reconciliation keys, want 6 (3 fixed, 3 metered): %+v", len(diffs), diffs)
	}
	for _, d := range diffs {
		if d.Outcome != billingdb.Match {
			t.Errorf("difference %+v", d)
		}
	}

	before := e.rawRows("acme")
	again := e.run("acme", "2026-11", "job_2")
	if again.Receivables != 0 || again.Unchanged != 1 {
		t.Errorf("second run %+v, want 1 unchanged", again)
	}
	if after := e.rawRows("acme"); !reflect.DeepEqual(before, after) {
		t.Errorf("a re-run changed the stored rows:\n%v\n%v", before, after)
	}
}

// A crashed run left lines of a new revision without their receivable row;
// the resumed run writes exactly the rows the crashed one would have:
// afterwards the current receivable and lines equal a clean run's.
func TestRunResumesAfterACrashBetweenLinesAndReceivable(t *testing.T) {
	e := newEnv(t)
	e.loadCatalogue("acme")
	nov := november("acme")
	e.storeRecords(nov[:4]...)
	e.run("acme", "2026-11", "job_1")
	e.storeRecords(nov[4:]...)

	// The crash: the lines of revision 2 are written, the receivable is not.
	closed, _ := e.periods.Closed(context.Background(), "acme")
	crashed := *e.svc
	crashed.o.Store = billingdb.New(crashingConn{e.conn})
	if _, err := crashed.compute(context.Background(), Request{Tenant: "acme", RunID: "job_2", Period: "2026-11", Watermark: e.now}, closed); err == nil {
		t.Fatal("the crashing store did not crash")
	}
	if r := e.receivable("acme", "2026-11"); r.Revision != 1 {
		t.Fatalf("revision %d after the crash", r.Revision)
	}
	e.run("acme", "2026-11", "job_2")
	r := e.receivable("acme", "2026-11")
	if r.Revision != 2 || !r.Total.Equal(dec("12063")) || len(e.lines("acme", r.ID)) != 9 {
		t.Fatalf("after resume: revision %d total %s lines %d", r.Revision, r.Total, len(e.lines("acme", r.ID)))
	}
}

// Close finalises and numbers; usage of November stored after the close
// does not change November's receivable (the bug of issue 15: the total grew
// from 1,980 to 6,980 JPY) but becomes a signed adjustment line in
// December's, carrying both periods; an invalidated November record becomes
// a negative one. Reopening an older period is refused; reopening the
// latest and closing again gives the same numbers.
func TestCloseNumbersFreezesAndAdjustsLateUsage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	nov := november("acme")
	e.storeRecords(nov...)
	if err := e.store.SetNumberFormat(ctx, "acme", "INV-{yyyy}{mm}-{seq:4}", "test", e.now); err != nil {
		t.Fatal(err)
	}
	// October: the support and newspaper fees only (no usage).
	oct, err := e.svc.Close(ctx, "acme", "2026-10", "test")
	if err != nil {
		t.Fatal(err)
	}
	if oct.Finalised != 1 || oct.FirstSeq != 1 || oct.LastSeq != 1 {
		t.Fatalf("October close %+v", oct)
	}
	res, err := e.svc.Close(ctx, "acme", "2026-11", "test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Finalised != 1 || res.FirstSeq != 2 || res.LastSeq != 2 {
		t.Fatalf("close %+v", res)
	}
	novR := e.receivable("acme", "2026-11")
	if novR.Status != billing.StatusFinal || novR.Number != "INV-202611-0002" || !novR.Total.Equal(dec("12063")) || novR.IssuedAt.IsZero() {
		t.Fatalf("November after close: %+v", novR)
	}
	// Closing again changes nothing and assigns no number.
	if again, err := e.svc.Close(ctx, "acme", "2026-11", "test"); err != nil || again.Finalised != 0 || again.Run.Frozen != 1 {
		t.Fatalf("second close %+v %v", again, err)
	}
	// A run of a closed period is refused.
	if _, err := e.svc.Run(ctx, Request{Tenant: "acme", RunID: "j", Period: "2026-11", Watermark: e.now}); !errors.Is(err, ErrClosed) {
		t.Fatalf("run of a closed period: %v", err)
	}

	// After the close: 5,000 more calls on 29 November, and u4 (2 meals) invalidated.
	e.now = e.now.Add(time.Hour)
	late := ev("acme", "late-1", "k-api", "calls", "5000", 11, 29, 10, e.now.Add(-time.Minute))
	e.storeRecords(late)
	e.invalidate(nov[3])
	e.run("acme", "2026-12", "job_dec")
	if got := e.receivable("acme", "2026-11"); got.Revision != novR.Revision || !got.Total.Equal(dec("12063")) {
		t.Fatalf("November changed after its close: %+v", got)
	}
	dec := e.receivable("acme", "2026-12")
	var adj []billing.Line
	for _, l := range e.lines("acme", dec.ID) {
		if l.Kind == billing.KindAdjustment {
			adj = append(adj, l)
		}
	}
	// Calls: 8,000 graduated = 1,000 + 2,000 + 300 = 3,300, less 10 % = 2,970; billed 1,800: +1,170.
	// Meals: 1 × 540 = 540; billed 1,620: −1,080.
	if len(adj) != 2 {
		t.Fatalf("adjustments %+v", adj)
	}
	want := map[string]string{"api-calls": "1170", "meals": "-1080"}
	for _, a := range adj {
		if !a.Amount.Equal(decimalOf(want[a.Item])) || a.ChargePeriod != "2026-11" || a.BillingPeriod != "2026-12" {
			t.Errorf("adjustment %s: %s charge %s billed %s, want %s for 2026-11 in 2026-12", a.Item, a.Amount,
				a.ChargePeriod, a.BillingPeriod, want[a.Item])
		}
	}

	// Reopen: only the latest closed period.
	if _, err := e.svc.Reopen(ctx, "acme", "2026-10", "wrong", "test"); !errors.Is(err, ErrNotLatest) {
		t.Fatalf("reopen of October: %v", err)
	}
	if _, err := e.svc.Reopen(ctx, "acme", "2026-11", "", "test"); err == nil {
		t.Fatal("reopen without a reason accepted")
	}
	n, err := e.svc.Reopen(ctx, "acme", "2026-11", "late usage to include", "test")
	if err != nil || n != 1 {
		t.Fatalf("reopen: %d %v", n, err)
	}
	if r := e.receivable("acme", "2026-11"); r.Status != billing.StatusDraft || r.Number != "INV-202611-0002" {
		t.Fatalf("reopened: %+v", r)
	}
	// December's next run sees November open again: no adjustments.
	e.run("acme", "2026-12", "job_dec2")
	for _, l := range e.lines("acme", dec.ID) {
		if l.Kind == billing.KindAdjustment {
			t.Errorf("adjustment left after the reopen: %+v", l)
		}
	}
	e.now = e.now.Add(time.Minute)
	res, err = e.svc.Close(ctx, "acme", "2026-11", "test")
	if err != nil {
		t.Fatal(err)
	}
	r := e.receivable("acme", "2026-11")
	// 12,063 + 1,170 + 117 (tax) − 1,080 (meals contain their tax) = 12,270.
	if r.Status != billing.StatusFinal || r.Number != "INV-202611-0002" || !r.Total.Equal(decimalOf("12270")) {
		t.Fatalf("re-closed: %s %s %s", r.Status, r.Number, r.Total)
	}
	events, err := e.store.PeriodEvents(ctx, "acme")
	if err != nil || len(events) != 5 || events[3].Action != "reopen" || events[3].Reason != "late usage to include" {
		t.Fatalf("audit %+v %v", events, err)
	}
}

// The detail-line limit: a run that would exceed it fails before writing.
func TestRunRefusesBeyondTheLineLimit(t *testing.T) {
	e := newEnv(t)
	e.loadCatalogue("acme")
	e.storeRecords(november("acme")...)
	e.maxLine = 8
	_, err := e.svc.Run(context.Background(), Request{Tenant: "acme", RunID: "j", Period: "2026-11", Watermark: e.now})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("run over the limit: %v", err)
	}
	if r, _ := e.store.Get(context.Background(), "acme", billing.ReceivableID("acme", "b1", "2026-11")); r != nil {
		t.Fatalf("written anyway: %+v", r)
	}
	e.maxLine = 9
	e.run("acme", "2026-11", "j2")
}

// Another tenant sees nothing of acme's receivables.
func TestStoreIsTenantScoped(t *testing.T) {
	e := newEnv(t)
	e.loadCatalogue("acme")
	e.storeRecords(november("acme")...)
	e.run("acme", "2026-11", "j")
	id := billing.ReceivableID("acme", "b1", "2026-11")
	ctx := context.Background()
	if r, err := e.store.Get(ctx, "other", id); r != nil || err != nil {
		t.Errorf("other tenant reads %v %v", r, err)
	}
	if ls, _ := e.store.Lines(ctx, "other", id, nil, 0); len(ls) != 0 {
		t.Errorf("other tenant reads %d lines", len(ls))
	}
	if n, _ := e.store.Count(ctx, "other", billingdb.Filter{}); n != 0 {
		t.Errorf("other tenant counts %d", n)
	}
	if _, err := e.svc.Delete(ctx, "other", id, "x", "t"); err != nil {
		t.Error(err)
	}
	if r := e.receivable("acme", "2026-11"); r.Status != billing.StatusDraft {
		t.Errorf("other tenant deleted it: %s", r.Status)
	}
}

// An injected difference (one streamed line 1 yen off, and a streamed line
// of a charge the batch does not produce) is reported as such, with both
// figures; the receivable takes the batch's.
func TestReconciliationReportsAnInjectedDifference(t *testing.T) {
	e := newEnv(t)
	e.loadCatalogue("acme")
	nov := november("acme")
	e.storeRecords(nov...)
	e.streamLines("acme", pricing.PeriodOfMonth(2026, time.November), nov, func(l *schemas.RatedLine) {
		if l.Event.ID == "u7" {
			l.Amount = l.Amount.Add(decimalOf("1"))
		}
	})
	e.streamLines("acme", pricing.PeriodOfMonth(2026, time.November), []schemas.UsageEvent{
		ev("acme", "stray", "k-api", "calls", "1", 11, 2, 0, time.Time{})}, func(l *schemas.RatedLine) {
		if l.Event.ID == "stray" { // the fixed lines are written again unchanged
			l.Item = "k-gone/api-calls"
		}
	})
	res := e.run("acme", "2026-11", "job_r")
	if res.Differences != 2 {
		t.Errorf("%d differences, want 2", res.Differences)
	}
	got := map[string]billingdb.Diff{}
	if err := e.store.Reconciliation(context.Background(), "acme", "job_r", "", func(d billingdb.Diff) error {
		got[d.Item] = d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := got["k-food/meals"]; d.Outcome != billingdb.Differ || !d.Batch.Equal(decimalOf("1620")) || !d.Stream.Equal(decimalOf("1621")) {
		t.Errorf("meals: %+v", d)
	}
	if d := got["k-gone/api-calls"]; d.Outcome != billingdb.OnlyInStream || !d.Stream.Equal(decimalOf("1")) {
		t.Errorf("stray: %+v", d)
	}
	if d := got["k-api/api-calls"]; d.Outcome != billingdb.Match {
		t.Errorf("calls: %+v", d)
	}
	if r := e.receivable("acme", "2026-11"); !r.Total.Equal(decimalOf("12063")) {
		t.Errorf("total %s", r.Total)
	}
	// Finance's views: FINAL built in, deleted lines left out.
	var n uint64
	if err := e.conn.QueryRow(context.Background(), "SELECT count() FROM receivable_lines_current WHERE tenant = 'acme'").Scan(&n); err != nil || n != 9 {
		t.Errorf("receivable_lines_current: %d %v", n, err)
	}
	if err := e.conn.QueryRow(context.Background(), "SELECT count() FROM receivables_current WHERE tenant = 'acme'").Scan(&n); err != nil || n != 1 {
		t.Errorf("receivables_current: %d %v", n, err)
	}
}
