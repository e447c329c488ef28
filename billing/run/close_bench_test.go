package run

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// benchCatalogue is a tenant of n customers, each with one basic contract
// and one service contract on a plan of 2 fixed fees and 5 metered fees (one
// element each, per unit), 2 of them discounted 10 %: 10 detail lines per
// receivable (7 charges, 2 discounts, 1 tax line).
func benchCatalogue(n int) *catalog.Catalogue {
	since := catalog.Validity{ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := func(s string) *decimal.Decimal { x := decimal.RequireFromString(s); return &x }
	c := &catalog.Catalogue{Tenant: "bench",
		Services: []catalog.Service{{Code: "s", Name: "S", Versions: []catalog.ServiceVersion{{Validity: since, Kind: catalog.KindService, Plans: []string{"p"}}}}},
		DiscountTables: []catalog.DiscountTable{{Code: "ten", Name: "10%", Versions: []catalog.DiscountTableVersion{{Validity: since,
			Kind: catalog.DiscountPercentage, Basis: catalog.BasisAmount, Tiers: []catalog.DiscountTier{{From: decimal.Zero, Value: decimal.NewFromInt(10)}}}}}},
	}
	pv := catalog.PlanVersion{Validity: since, Type: catalog.PlanMetered, Currency: "JPY"}
	for i := 1; i <= 2; i++ {
		code := fmt.Sprintf("fixed%d", i)
		pv.Fees = append(pv.Fees, code)
		c.Fees = append(c.Fees, catalog.Fee{Code: code, Name: code, Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeFixed,
			Amount: d(strconv.Itoa(1000 * i)), Recurrence: catalog.Monthly, Proration: catalog.ProrateActualDays, Timing: catalog.Arrears}}})
	}
	for i := 1; i <= 5; i++ {
		code := fmt.Sprintf("m%d", i)
		pv.Fees = append(pv.Fees, code)
		c.Fees = append(c.Fees, catalog.Fee{Code: code, Name: code, Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered,
			Element: code, Rates: []catalog.RateChoice{{RateTable: code}}}}})
		c.Elements = append(c.Elements, catalog.Element{Code: code, Name: code, Versions: []catalog.ElementVersion{{Validity: since, Unit: "u", Aggregation: catalog.AggSum}}})
		c.RateTables = append(c.RateTables, catalog.RateTable{Code: code, Name: code, Versions: []catalog.RateTableVersion{{Validity: since,
			Model: catalog.ModelPerUnit, UnitPrice: d(strconv.Itoa(i))}}})
	}
	c.Plans = []catalog.Plan{{Code: "p", Name: "P", Versions: []catalog.PlanVersion{pv}}}
	for i := 0; i < n; i++ {
		cu := fmt.Sprintf("c%06d", i)
		c.BasicContracts = append(c.BasicContracts, catalog.BasicContract{ID: "b" + cu, Customer: cu,
			DateRange: catalog.DateRange{Start: catalog.Date{Year: 2026, Month: 1, Day: 1}}, Currency: "JPY", TimeZone: "Asia/Tokyo", Rounding: money.HalfUp})
		c.ServiceContracts = append(c.ServiceContracts, catalog.ServiceContract{ID: "k" + cu, Customer: cu, Basic: "b" + cu, Service: "s",
			DateRange: catalog.DateRange{Start: catalog.Date{Year: 2026, Month: 1, Day: 1}},
			Plans:     []catalog.PricePlanTerm{{Plan: "p", DateRange: catalog.DateRange{Start: catalog.Date{Year: 2026, Month: 1, Day: 1}}}}})
		for j := 1; j <= 2; j++ {
			c.DiscountContracts = append(c.DiscountContracts, catalog.DiscountContract{ID: fmt.Sprintf("d%d%s", j, cu), Customer: cu, Service: "s",
				DiscountTable: "ten", DateRange: catalog.DateRange{Start: catalog.Date{Year: 2026, Month: 1, Day: 1}},
				Scope: catalog.DiscountScope{Level: "fee", Target: fmt.Sprintf("m%d", j)}, Order: j})
		}
	}
	return c
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "?"
}

// BenchmarkClose closes a period of KAKIN_BENCH_CLOSE_CUSTOMERS customers
// (default 100,000; 10 detail lines each, 5 usage records each): the
// batch recomputation from usage_records, the reconciliation, writing the
// drafts and finalising them with numbers. It reports lines/s of the whole
// close and the process's peak RSS (VmHWM, setup included). Run by `make
// bench-close`; figures in docs/BENCHMARKS.md.
func BenchmarkClose(b *testing.B) {
	n := 100_000
	if s := os.Getenv("KAKIN_BENCH_CLOSE_CUSTOMERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnvB(b)
		e.cats["bench"] = benchCatalogue(n)
		e.svc.o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		ctx := context.Background()
		recs := make([]usagedb.AcceptedRecord, 0, 100_000)
		flush := func() {
			if len(recs) == 0 {
				return
			}
			bt, err := e.conn.PrepareBatch(ctx, usagedb.InsertInto("usage_records"))
			if err != nil {
				b.Fatal(err)
			}
			if err := usagedb.AppendRecords(bt, recs, e.now); err != nil {
				b.Fatal(err)
			}
			if err := bt.Send(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
		at := time.Date(2026, 11, 10, 3, 0, 0, 0, time.UTC)
		off := int64(0)
		for c := 0; c < n; c++ {
			cu := fmt.Sprintf("c%06d", c)
			for m := 1; m <= 5; m++ {
				off++
				recs = append(recs, usagedb.AcceptedRecord{Partition: c % 12, Offset: off, Event: schemas.UsageEvent{Tenant: "bench",
					ID: fmt.Sprintf("%s-%d", cu, m), Customer: cu, Contract: "k" + cu, Element: fmt.Sprintf("m%d", m),
					Quantity: decimal.NewFromInt(int64(10 + c%7)), Time: at, ReceivedAt: at.Add(time.Second)}})
			}
			if len(recs) >= 100_000 {
				flush()
			}
		}
		flush()
		runtime.GC()
		before := vmHWM()
		b.StartTimer()
		start, cpu0 := time.Now(), cpuSeconds()
		res, err := e.svc.Close(ctx, "bench", "2026-11", "bench")
		if err != nil {
			b.Fatal(err)
		}
		d, cpu := time.Since(start), cpuSeconds()-cpu0
		b.StopTimer()
		if res.Finalised != uint64(n) || res.Run.Lines != uint64(10*n) || res.LastSeq != uint64(n) {
			b.Fatalf("close %+v", res)
		}
		b.ReportMetric(float64(res.Run.Lines)/d.Seconds(), "lines/s")
		b.ReportMetric(d.Seconds(), "s/close")
		b.ReportMetric(cpu, "client-cpu-s")
		b.Logf("%d customers, %d lines: close %.1f s wall (%.0f lines/s), %.1f s of this process's CPU; peak RSS before the close %s, after %s; load average %s",
			n, res.Run.Lines, d.Seconds(), float64(res.Run.Lines)/d.Seconds(), cpu, before, vmHWM(), loadAvg())
	}
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
