package pricing

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// benchCatalogue: nCustomers customers, one contract each, on a plan whose
// fee on element "e" is priced by rt (JPY, Asia/Tokyo, period rounding).
func benchCatalogue(nCustomers int, rt catalog.RateTableVersion) *catalog.Catalogue {
	c := oneFee(rt, "JPY")
	c.BasicContracts, c.ServiceContracts = nil, nil
	for i := 0; i < nCustomers; i++ {
		id := fmt.Sprintf("cust-%07d", i)
		c.BasicContracts = append(c.BasicContracts, catalog.BasicContract{ID: "b-" + id, Customer: id,
			DateRange: catalog.DateRange{Start: date("2026-01-01")}, Currency: "JPY", TimeZone: "Asia/Tokyo", Rounding: "half_up"})
		c.ServiceContracts = append(c.ServiceContracts, catalog.ServiceContract{ID: "k-" + id, Customer: id, Basic: "b-" + id,
			Service: "s", DateRange: catalog.DateRange{Start: date("2026-01-01")},
			Plans: []catalog.PricePlanTerm{{Plan: "p", DateRange: catalog.DateRange{Start: date("2026-01-01")}}}})
	}
	return c
}

func benchEvents(n, nCustomers int) []schemas.UsageEvent {
	evs := make([]schemas.UsageEvent, n)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, tokyo)
	for i := range evs {
		evs[i] = schemas.UsageEvent{Tenant: "t1", ID: fmt.Sprintf("evt-%08d", i), Customer: fmt.Sprintf("cust-%07d", (i*7919)%nCustomers),
			Element: "e", Quantity: decimal.New(int64(1+i%997), -1), Time: start.Add(time.Duration(i) * 37 * time.Second).UTC()}
	}
	return evs
}

// benchRate measures the whole pure path for one event: resolve the charge
// (customer, contract, plan, versions, rate, period in the contract's time
// zone), find its running state in a map, apply the record.
func benchRate(b *testing.B, rt catalog.RateTableVersion, noFast bool) {
	const customers = 1000
	e := compile(b, benchCatalogue(customers, rt))
	e.noFast = noFast
	evs := benchEvents(1<<14, customers)
	states := map[Key]*State{}
	buf := make([]Charge, 0, 4)
	var sink int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	i := 0
	for b.Loop() {
		ev := &evs[i&(len(evs)-1)]
		i++
		charges, err := e.Resolve(ev, buf)
		if err != nil {
			b.Fatal(err)
		}
		for j := range charges {
			c := &charges[j]
			st := states[c.Key]
			if st == nil {
				st = &State{}
				states[c.Key] = st
			}
			l, err := c.Apply(st, ev)
			if err != nil {
				b.Fatal(err)
			}
			sink += l.Amount
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	reportCPU(b, cpu)
	if sink == 0 {
		b.Fatal("nothing charged")
	}
}

func BenchmarkRatePerUnit(b *testing.B) { benchRate(b, perUnit("0.037"), false) }

func BenchmarkRateGraduated(b *testing.B) {
	benchRate(b, graduated([3]string{"100000", "0.05", "0"}, [3]string{"1000000", "0.03", "100"}, [3]string{"", "0.01", "0"}), false)
}

func BenchmarkRateVolume(b *testing.B) {
	benchRate(b, volume([3]string{"1000", "12", "0"}, [3]string{"100000", "10", "500"}, [3]string{"", "8", "0"}), false)
}

// The decimal reference path, for comparison.
func BenchmarkRateGraduatedDecimal(b *testing.B) {
	benchRate(b, graduated([3]string{"100000", "0.05", "0"}, [3]string{"1000000", "0.03", "100"}, [3]string{"", "0.01", "0"}), true)
}

// cpuTime is the process's user+system CPU time. On a shared machine wall
// time per op includes waiting for a core; CPU time per op is what one event
// costs a core (the loop is single-threaded and allocates nothing, so no GC
// work is mixed in).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	used := cpuTime() - start
	if used <= 0 {
		return
	}
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/used.Seconds(), "events/cpu-s")
}

// BenchmarkStatePersist encodes and decodes a running state, as the stage
// does around Redis.
func BenchmarkStatePersist(b *testing.B) {
	s := State{agg: 1, records: 12345, qty: u128{0, 98765 * qtyOne}, Seq: 1 << 40}
	buf := make([]byte, 0, 64)
	var back State
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.AppendBinary(buf[:0])
		if err := back.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}

// BenchmarkCompileMillionContracts compiles a catalogue with 1,000,000
// service contracts (one customer each).
func BenchmarkCompileMillionContracts(b *testing.B) {
	c := benchCatalogue(1_000_000, perUnit("1"))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Compile(c); err != nil {
			b.Fatal(err)
		}
	}
}
