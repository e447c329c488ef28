package usagedb

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
)

// seedFinanceReceivables loads the receivables FINANCE.md describes under
// "Receivables": composed by billing.Compose (the billing run's own
// composer: lines, tax waterfall, ids) and stored by billingdb.Store (the
// run's and the close's own writes), every write sent twice as a
// redelivery would.
func seedFinanceReceivables(t *testing.T, conn driver.Conn) {
	t.Helper()
	ctx := context.Background()
	store := billingdb.New(conn)
	day := func(y int, m time.Month, d int) catalog.Date { return catalog.Date{Year: y, Month: m, Day: d} }
	feb := [2]catalog.Date{day(2026, 2, 1), day(2026, 2, 28)}
	mar := [2]catalog.Date{day(2026, 3, 1), day(2026, 3, 31)}
	apr := [2]catalog.Date{day(2026, 4, 1), day(2026, 4, 30)}
	metered := func(contract, item, period string, span [2]catalog.Date, qty, price string) billing.Charge {
		return billing.Charge{Kind: billing.KindMetered, Contract: contract, Plan: "plan-s", Fee: item, Item: item, Rate: item,
			Quantity: dec(qty), UnitPrice: dec(price), UnitPriced: true, Amount: dec(qty).Mul(dec(price)), Discount: dec("0"),
			ChargePeriod: period, From: span[0], To: span[1], TaxCategory: catalog.TaxStandard}
	}
	compose := func(tenant, customer, basic, period string, span [2]catalog.Date, charges ...billing.Charge) *billing.Receivable {
		r, err := billing.Compose(billing.Input{Tenant: tenant, Customer: customer, BasicContract: basic, Period: period,
			Start: span[0], End: span[1], TimeZone: "Asia/Tokyo", Currency: "JPY", Rounding: money.HalfUp, Charges: charges})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	write := func(ws ...billingdb.Write) {
		t.Helper()
		for range 2 {
			if err := store.WriteReceivables(ctx, ws); err != nil {
				t.Fatal(err)
			}
		}
	}
	draft := func(r *billing.Receivable, revision uint64) billingdb.Write {
		return billingdb.Write{Stored: billingdb.Stored{Receivable: r, Status: billing.StatusDraft, ChangedBy: "brun_1", Revision: revision}}
	}
	// final is the close's write: the same receivable numbered, its lines kept.
	final := func(r *billing.Receivable, revision, seq uint64, issued time.Time) billingdb.Write {
		number, err := billing.FormatNumber(billing.DefaultNumberFormat, seq, r.Period)
		if err != nil {
			t.Fatal(err)
		}
		w := draft(r, revision)
		w.Status, w.NumberSeq, w.Number, w.IssuedAt, w.ChangedBy = billing.StatusFinal, seq, number, issued, "cli"
		w.KeepLines, w.LineCount = true, uint32(len(r.Lines))
		return w
	}
	closedFeb := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	closedMar := time.Date(2026, 4, 2, 1, 0, 0, 0, time.UTC)

	// 2026-02: cust-001, 1 GB on sc-a at 2 JPY (tax 0.2 rounds to 0); closed: INV-00000001.
	r1 := compose("acme", "cust-001", "b-1", "2026-02", feb, metered("sc-a", "gb-fee", "2026-02", feb, "1", "2"))
	write(draft(r1, 1))
	write(final(r1, 2, 1, closedFeb))

	// 2026-03: cust-001 (sc-a fixed 100, 15 GB; sc-b 5 GB; 2 GB of February
	// stored after February's close: an adjustment), cust-002 (a reduced-rate
	// newsletter, 1,000 requests with 10 % off), cust-003 (20 requests),
	// closed as INV-00000002..4; cust-003's is then voided.
	fixed := billing.Charge{Kind: billing.KindFixed, Contract: "sc-a", Plan: "plan-s", Fee: "storage-base", Item: "storage-base",
		Quantity: dec("1"), Amount: dec("100"), Discount: dec("0"), ChargePeriod: "2026-03", From: mar[0], To: mar[1], TaxCategory: catalog.TaxStandard}
	late := billing.Charge{Kind: billing.KindAdjustment, Contract: "sc-a", Plan: "plan-s", Fee: "gb-fee", Item: "gb-fee", Rate: "gb-fee",
		Quantity: dec("2"), Amount: dec("4"), ChargePeriod: "2026-02", From: feb[0], To: feb[1], TaxCategory: catalog.TaxStandard,
		Note: "usage stored after 2026-02 was closed"}
	r2 := compose("acme", "cust-001", "b-1", "2026-03", mar, fixed, metered("sc-a", "gb-fee", "2026-03", mar, "15", "2"),
		metered("sc-b", "gb-fee", "2026-03", mar, "5", "2"), late)
	news := billing.Charge{Kind: billing.KindFixed, Contract: "sc-c", Plan: "plan-a", Fee: "newsletter", Item: "newsletter",
		Quantity: dec("1"), Amount: dec("500"), Discount: dec("0"), ChargePeriod: "2026-03", From: mar[0], To: mar[1], TaxCategory: catalog.TaxReduced}
	requests := metered("sc-c", "requests", "2026-03", mar, "1000", "0.05")
	requests.Amount, requests.Discount = dec("45"), dec("-5")
	r3 := compose("acme", "cust-002", "b-2", "2026-03", mar, news, requests)
	r4 := compose("acme", "cust-003", "b-3", "2026-03", mar, metered("sc-d", "requests", "2026-03", mar, "20", "0.05"))
	write(draft(r2, 1), draft(r3, 1), draft(r4, 1))
	write(final(r2, 2, 2, closedMar), final(r3, 2, 3, closedMar), final(r4, 2, 4, closedMar))
	void := final(r4, 3, 4, closedMar)
	void.Status, void.VoidReason, void.ChangedBy = billing.StatusVoided, "issued to the wrong customer", "client-finance"
	write(void)

	// 2026-04, open: cust-001's draft had sc-a 3 GB and sc-b 1 GB; sc-b's
	// record was invalidated and the next run wrote revision 2 without it.
	r5a := compose("acme", "cust-001", "b-1", "2026-04", apr, metered("sc-a", "gb-fee", "2026-04", apr, "3", "2"),
		metered("sc-b", "gb-fee", "2026-04", apr, "1", "2"))
	write(draft(r5a, 1))
	r5 := compose("acme", "cust-001", "b-1", "2026-04", apr, metered("sc-a", "gb-fee", "2026-04", apr, "3", "2"))
	var gone []string
	for _, l := range r5a.Lines {
		keep := false
		for _, m := range r5.Lines {
			keep = keep || m.ID == l.ID
		}
		if !keep {
			gone = append(gone, l.ID)
		}
	}
	w5 := draft(r5, 2)
	w5.Gone = gone
	write(w5)

	// Another tenant's receivable that no query may see.
	g := compose("globex", "cust-001", "b-1", "2026-03", mar, metered("sc-a", "gb-fee", "2026-03", mar, "999", "1"))
	write(draft(g, 1))
	write(final(g, 2, 1, closedMar))
}
