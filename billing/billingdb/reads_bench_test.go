package billingdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// benchPeriods are the billing periods the benchmark fills: far in the past,
// so that no clock matters.
var benchPeriods = []string{"2019-01", "2019-02", "2019-03", "2019-04", "2019-05", "2019-06", "2019-07", "2019-08", "2019-09", "2019-10"}

// benchReceivable is customer c's receivable of period p with n detail
// lines (n-1 metered charges and a tax line), totals consistent with them.
func benchReceivable(tenant string, c int, p string, n int) *billing.Receivable {
	cu := fmt.Sprintf("c%06d", c)
	y, _ := strconv.Atoi(p[:4])
	m, _ := strconv.Atoi(p[5:])
	start := catalog.Date{Year: y, Month: time.Month(m), Day: 1}
	end := catalog.DateOf(time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC))
	r := &billing.Receivable{ID: billing.ReceivableID(tenant, "b"+cu, p), Tenant: tenant, Customer: cu, BasicContract: "b" + cu,
		Period: p, PeriodStart: start, PeriodEnd: end, TimeZone: "Asia/Tokyo", Currency: "JPY", Rounding: money.HalfUp}
	sub := decimal.Zero
	for i := 1; i < n; i++ {
		l := billing.Line{Seq: i, Kind: billing.KindMetered, Contract: "k" + cu, Plan: "p", Fee: fmt.Sprintf("m%d", i),
			Item: fmt.Sprintf("m%d", i), Rate: fmt.Sprintf("m%d", i), Quantity: decimal.NewFromInt(int64(10 + (c+i)%97)),
			UnitPrice: decimal.NewFromInt(int64(i)), UnitPriced: true, TaxCategory: catalog.TaxStandard,
			TaxRate: decimal.RequireFromString("0.1"), ChargePeriod: p, ChargeFrom: start, ChargeTo: end}
		l.Amount = l.Quantity.Mul(l.UnitPrice)
		l.ID = billing.LineID(r.ID, &l)
		sub = sub.Add(l.Amount)
		r.Lines = append(r.Lines, l)
	}
	tax := sub.Div(decimal.NewFromInt(10)).Round(0)
	tl := billing.Line{Seq: n, Kind: billing.KindTax, Amount: tax, Tax: tax, TaxCategory: catalog.TaxStandard,
		TaxRate: decimal.RequireFromString("0.1"), ChargePeriod: p, ChargeFrom: start, ChargeTo: end}
	tl.ID = billing.LineID(r.ID, &tl)
	r.Lines = append(r.Lines, tl)
	r.Subtotal, r.Discounts, r.Adjustments, r.TaxExclusive, r.TaxIncluded = sub, decimal.Zero, decimal.Zero, tax, decimal.Zero
	r.Total = sub.Add(tax)
	r.Taxes = []billing.TaxSummary{{Category: catalog.TaxStandard, Rate: decimal.RequireFromString("0.1"), Subtotal: sub,
		Base: sub, Tax: tax, Discounts: decimal.Zero, Adjust: decimal.Zero}}
	r.Hash = fmt.Sprintf("%032x", c*100+m)
	return r
}

// seedReceivables writes customers × len(benchPeriods) receivables of
// lines lines each for the tenant as the billing run and the close do: every
// period's drafts (revision 1) with their lines, then, for every period but
// the last, the final revision (2, numbered, issued on the 1st of the next
// month, lines kept); one receivable in 100 of the closed periods is then
// voided (revision 3). It returns the number of receivables and lines.
func seedReceivables(tb testing.TB, s *Store, tenant string, customers, lines int) (int, int) {
	tb.Helper()
	ctx := context.Background()
	seq := uint64(0)
	for pi, p := range benchPeriods {
		drafts := make([]Write, 0, customers)
		for c := 0; c < customers; c++ {
			drafts = append(drafts, Write{Stored: Stored{Receivable: benchReceivable(tenant, c, p, lines), Status: billing.StatusDraft,
				ChangedBy: "brun_bench", Revision: 1}})
		}
		if err := s.WriteReceivables(ctx, drafts); err != nil {
			tb.Fatal(err)
		}
		if pi == len(benchPeriods)-1 {
			continue
		}
		y, _ := strconv.Atoi(p[:4])
		m, _ := strconv.Atoi(p[5:])
		issued := time.Date(y, time.Month(m)+1, 1, 9, 0, 0, 0, time.UTC)
		finals := make([]Write, 0, customers)
		var voids []Write
		for i, d := range drafts {
			seq++
			f := d
			f.Status, f.NumberSeq, f.Number, f.IssuedAt, f.Revision, f.ChangedBy = billing.StatusFinal, seq,
				fmt.Sprintf("INV-%07d", seq), issued.Add(time.Duration(i)*time.Second), 2, "close"
			f.KeepLines, f.LineCount = true, uint32(len(d.Lines))
			finals = append(finals, f)
			if i%100 == 7 {
				v := f
				v.Status, v.VoidReason, v.Revision = billing.StatusVoided, "issued twice", 3
				voids = append(voids, v)
			}
		}
		if err := s.WriteReceivables(ctx, finals); err != nil {
			tb.Fatal(err)
		}
		if err := s.WriteReceivables(ctx, voids); err != nil {
			tb.Fatal(err)
		}
	}
	return customers * len(benchPeriods), customers * len(benchPeriods) * lines
}

// BenchmarkReceivableReads loads one tenant's KAKIN_BENCH_RECEIVABLES
// receivables (default 100,000: 10,000 customers × 10 periods) of 10 detail
// lines each (1,000,000 lines), written as the billing run and the close
// write them (drafts, then final revisions, 1 % voided; unmerged parts
// left as they are), plus another tenant's 20,000 receivables (200,000
// lines) as noise, then measures p50/p99 of the reads the receivable routes
// make: get one receivable (GET /v1/receivables/{id}), get it with its first
// page of 100 lines (GET /v1/receivables/{id}/lines), and searches (first page of 100) and
// counts by customer, period, status, number, amount range, issued range,
// and a page deep in the listing. Issue 15's targets: get with lines p99 <
// 50 ms, search p99 < 100 ms at 1,000,000 lines. Figures in
// docs/BENCHMARKS.md.
//
//	go test -count=1 -run '^$' -bench ReceivableReads -benchtime 200x -timeout 30m ./billing/billingdb/
func BenchmarkReceivableReads(b *testing.B) {
	n := 100_000
	if s := os.Getenv("KAKIN_BENCH_RECEIVABLES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	customers := max(n/len(benchPeriods), 1)
	conn, _ := testenv.ClickHouse(b, "bdb")
	s := New(conn)
	ctx := context.Background()
	seedStart := time.Now()
	recs, lines := seedReceivables(b, s, "acme", customers, 10)
	seedReceivables(b, s, "globex", max(customers/5, 1), 10)
	b.Logf("seeded %d receivables, %d lines (+ globex's) in %s; load average %s", recs, lines, time.Since(seedStart).Round(time.Second), loadAvg())
	if got, err := s.CountLines(ctx, "acme"); err != nil || got != uint64(lines) {
		b.Fatalf("acme has %d lines (%v), want %d", got, err, lines)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	randomID := func() string {
		return billing.ReceivableID("acme", fmt.Sprintf("bc%06d", rng.IntN(customers)), benchPeriods[rng.IntN(len(benchPeriods))])
	}
	dec := func(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }
	tm := func(t time.Time) *time.Time { return &t }
	mid := billing.ReceivableID("acme", fmt.Sprintf("bc%06d", customers/2), "2019-05")
	searches := []struct {
		name  string
		f     func() Filter
		after *Key
		want  func(int) bool // of the first page's size
	}{
		{"search_customer", func() Filter { return Filter{Customer: fmt.Sprintf("c%06d", rng.IntN(customers))} }, nil,
			func(k int) bool { return k == len(benchPeriods) }},
		{"search_customer_period", func() Filter {
			return Filter{Customer: fmt.Sprintf("c%06d", rng.IntN(customers)), Period: benchPeriods[rng.IntN(len(benchPeriods))]}
		}, nil, func(k int) bool { return k == 1 }},
		{"search_period", func() Filter { return Filter{Period: benchPeriods[rng.IntN(len(benchPeriods))]} }, nil,
			func(k int) bool { return k == min(100, customers) }},
		{"search_status_voided", func() Filter { return Filter{Status: string(billing.StatusVoided)} }, nil, func(k int) bool { return k > 0 }},
		{"search_status_draft_period", func() Filter { return Filter{Status: string(billing.StatusDraft), Period: "2019-10"} }, nil,
			func(k int) bool { return k == min(100, customers) }},
		{"search_number", func() Filter {
			return Filter{Number: fmt.Sprintf("INV-%07d", 1+rng.IntN(customers*(len(benchPeriods)-1)))}
		}, nil,
			func(k int) bool { return k == 1 }},
		{"search_amount_range", func() Filter { return Filter{MinTotal: dec("5000"), MaxTotal: dec("5100")} }, nil, func(k int) bool { return k > 0 }},
		{"search_issued_range", func() Filter {
			from := time.Date(2019, time.Month(2+rng.IntN(8)), 1, 9, 0, 0, 0, time.UTC)
			return Filter{IssuedFrom: tm(from), IssuedTo: tm(from.Add(time.Hour))}
		}, nil, func(k int) bool { return k == min(100, customers) }},
		{"search_page_deep", func() Filter { return Filter{} }, &Key{Period: "2019-05", ID: mid}, func(k int) bool { return k == 100 }},
	}
	pct := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
	b.Run("get", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			id := randomID()
			start := time.Now()
			st, err := s.Get(ctx, "acme", id)
			lat = append(lat, time.Since(start))
			if err != nil || st == nil {
				b.Fatalf("%s: %v, %v", id, st, err)
			}
		}
		pct(b, lat)
	})
	b.Run("get_with_lines", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			id := randomID()
			start := time.Now()
			st, ls, err := s.GetWithLines(ctx, "acme", id, nil, 101)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			if st == nil || len(ls) != 10 {
				b.Fatalf("%s: %v, %d lines", id, st, len(ls))
			}
		}
		pct(b, lat)
	})
	for _, c := range searches {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				f := c.f()
				start := time.Now()
				got, err := s.Search(ctx, "acme", f, c.after, 101)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if k := min(len(got), 100); !c.want(k) {
					b.Fatalf("%+v: %d receivables on the first page", f, k)
				}
				for _, r := range got {
					if r.Tenant != "acme" {
						b.Fatalf("%s of tenant %s", r.ID, r.Tenant)
					}
				}
			}
			pct(b, lat)
		})
		b.Run("count_"+c.name[len("search_"):], func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				f := c.f()
				start := time.Now()
				if _, err := s.Count(ctx, "acme", f); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			pct(b, lat)
		})
	}
	b.Logf("load average after: %s", loadAvg())
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return string(raw[:min(len(raw), 14)])
}
