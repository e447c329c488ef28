package run

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
)

// lineText is what a line says, as text (decimals by value).
func lineText(ls []billing.Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%s %s %s %s %s q=%s u=%s a=%s tax=%s %s/%s %s", l.ID, l.Kind, l.Contract, l.Fee, l.Item,
			l.Quantity.String(), l.UnitPrice.String(), l.Amount.String(), l.Tax.String(), l.ChargePeriod, l.BillingPeriod, l.Note)
	}
	return out
}

// sameReceivable fails unless the stored receivable is the preview: same
// id, hash (everything it says), totals and lines.
func (e *env) sameReceivable(what string, preview *billing.Receivable) {
	e.t.Helper()
	stored := e.receivable(preview.Tenant, preview.Period)
	if stored.ID != preview.ID || stored.Hash != preview.Hash || !stored.Total.Equal(preview.Total) {
		e.t.Fatalf("%s: stored %s hash %s total %s, preview %s hash %s total %s", what, stored.ID, stored.Hash, stored.Total,
			preview.ID, preview.Hash, preview.Total)
	}
	got, want := lineText(e.lines(preview.Tenant, stored.ID)), lineText(preview.Lines)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("%s: stored lines\n%v\npreview lines\n%v", what, got, want)
	}
}

// Preview = invoice: a preview computed at any moment is, by the same code
// path, the draft a run writes and the final receivable a close freezes
// when nothing else arrives — in the open period, with adjustments for the
// closed period before, by customer, by basic contract, and with the
// period taken from the business clock.
func TestPreviewIsTheReceivable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	nov := november("acme")
	e.storeRecords(nov...)

	tests := []struct {
		name string
		req  PreviewRequest
	}{
		{"customer, November", PreviewRequest{Tenant: "acme", Customer: "c1", Period: "2026-11"}},
		{"basic contract, November", PreviewRequest{Tenant: "acme", BasicContract: "b1", Period: "2026-11"}},
		{"customer and basic contract, November", PreviewRequest{Tenant: "acme", Customer: "c1", BasicContract: "b1", Period: "2026-11"}},
	}
	var first *billing.Receivable
	for _, tt := range tests {
		got, err := e.svc.Preview(ctx, tt.req)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %d drafts, %v", tt.name, len(got), err)
		}
		if first != nil && got[0].Hash != first.Hash {
			t.Errorf("%s: hash %s, want %s", tt.name, got[0].Hash, first.Hash)
		}
		first = got[0]
	}
	if !first.Total.Equal(dec("12063")) || len(first.Lines) != 9 {
		t.Fatalf("November preview: total %s, %d lines; want 12,063 in 9", first.Total, len(first.Lines))
	}
	// Nothing was written.
	if r, err := e.store.Get(ctx, "acme", first.ID); err != nil || r != nil {
		t.Fatalf("a preview wrote a receivable: %+v %v", r, err)
	}
	e.run("acme", "2026-11", "job_nov")
	e.sameReceivable("November's draft", first)
	if _, err := e.svc.Close(ctx, "acme", "2026-11", "test"); err != nil {
		t.Fatal(err)
	}
	e.sameReceivable("November's final receivable", first)

	// A closed period has no preview: its receivables are final.
	if _, err := e.svc.Preview(ctx, PreviewRequest{Tenant: "acme", Customer: "c1", Period: "2026-11"}); !errors.Is(err, ErrClosed) {
		t.Errorf("preview of the closed November: %v, want ErrClosed", err)
	}
	for _, req := range []PreviewRequest{
		{Tenant: "acme", Customer: "nobody"},
		{Tenant: "acme", BasicContract: "b9"},
		{Tenant: "acme", Customer: "c2", BasicContract: "b1"}, // b1 is c1's
		{Tenant: "acme"},
	} {
		if _, err := e.svc.Preview(ctx, req); !errors.Is(err, ErrNoSuchContract) {
			t.Errorf("preview %+v: %v, want ErrNoSuchContract", req, err)
		}
	}
	if _, err := e.svc.Preview(ctx, PreviewRequest{Tenant: "beta", Customer: "c1"}); !errors.Is(err, ErrNoCatalogue) {
		t.Errorf("another tenant's customer: %v, want ErrNoCatalogue", err)
	}

	// December, the open period at the business clock (10 December), with
	// late November usage: the preview carries the adjustment and is the
	// draft December's run writes.
	e.now = time.Date(2026, 12, 10, 3, 0, 0, 0, time.UTC)
	e.storeRecords(ev("acme", "late-1", "k-api", "calls", "5000", 11, 29, 10, e.now.Add(-time.Minute)))
	got, err := e.svc.Preview(ctx, PreviewRequest{Tenant: "acme", Customer: "c1"})
	if err != nil || len(got) != 1 || got[0].Period != "2026-12" {
		t.Fatalf("December preview: %+v %v", got, err)
	}
	adjusted := false
	for _, l := range got[0].Lines {
		if l.Kind == billing.KindAdjustment && l.ChargePeriod == "2026-11" && l.BillingPeriod == "2026-12" && l.Amount.Equal(dec("1170")) {
			adjusted = true
		}
	}
	if !adjusted {
		t.Fatalf("December preview without November's +1,170 adjustment: %v", lineText(got[0].Lines))
	}
	e.run("acme", "2026-12", "job_dec")
	e.sameReceivable("December's draft", got[0])
}
