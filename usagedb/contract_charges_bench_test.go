package usagedb

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// BenchmarkContractCharges seeds BENCH_LINES rated lines (default
// 1,000,000) for one tenant and measures the pay-per-use read of one
// contract (ContractCharges.Items, what GET
// /v1/service-contracts/{id}/charges asks ClickHouse) with its p50 and p99
// over b.N reads. 90 % of the lines belong to 500 customers with two
// contracts each, spread over 12 months (about 75 lines per contract and
// month, a fixed fee and two split metered items); 10 % belong to one
// heavy contract in one month (100,000 lines at the default).
//
//	go test -run '^$' -bench ContractCharges -benchtime 200x ./usagedb/
func BenchmarkContractCharges(b *testing.B) {
	n := 1000000
	if s := os.Getenv("BENCH_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	conn := newDB(b)
	stage := newStage(conn)
	ctx := context.Background()
	seedStart := time.Now()
	heavy := n / 10
	const chunk = 50000
	for base := 0; base < n; base += chunk {
		var msgs []kafka.Message
		for i := base; i < min(base+chunk, n); i++ {
			var l schemas.RatedLine
			if i < heavy {
				id := fmt.Sprintf("h%08d", i)
				l = contractRated("acme", "big", "sc-big", "2026-03", id, "traffic", fmt.Sprintf("sc-big/bw[%d]", 100*(i%5)), march.Add(time.Duration(i%43200)*time.Minute))
			} else {
				k := i - heavy
				cust := k % 500
				contract := fmt.Sprintf("sc-%d-%d", cust, (k/500)%2)
				m := (k / 1000) % 12
				period := fmt.Sprintf("2026-%02d", m+1)
				at := time.Date(2026, time.Month(m+1), 1+k%28, 0, k%1440, 0, 0, time.UTC)
				id := fmt.Sprintf("e%08d", i)
				item := fmt.Sprintf("%s/bw[%d]", contract, 500*(1+k%2))
				if (k/12000)%75 == 0 { // one line in 75 is the fixed fee
					id = fmt.Sprintf("fixed:%s:%s:plan:base:%s-01:%d", contract, period, period, k)
					item = contract + "/base"
				}
				l = contractRated("acme", fmt.Sprintf("c%d", cust), contract, period, id, "traffic", item, at)
			}
			msgs = append(msgs, ratedMsg(b, i%12, int64(i), l))
		}
		if err := stage.HandleBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d rated lines in %s; load average %s", n, time.Since(seedStart).Round(time.Millisecond), loadAverage())
	defer func() { b.Logf("load average after: %s", loadAverage()) }()
	q := NewContractCharges(conn)
	cases := []struct {
		name               string
		customer, contract string
		periods            []string
		wantItems          int
	}{
		{"typical_contract_one_month", "c7", "sc-7-1", []string{"2026-03"}, 0},
		{"typical_contract_two_months", "c7", "sc-7-1", []string{"2026-02", "2026-03"}, 0},
		{"heavy_contract_100k_lines_one_month", "big", "sc-big", []string{"2026-03"}, 5},
		{"contract_without_lines", "c7", "sc-none", []string{"2026-03"}, 0},
	}
	// For comparison, on the typical and the heavy contract-month: the same
	// sums read with FINAL (the first version), with the invariant columns
	// grouped on instead of reduced with argMax, and with every column reduced
	// by argMax and no PREWHERE (the version before the current one).
	raw := func(sql, customer, contract string) func() error {
		return func() error {
			rows, err := conn.Query(ctx, sql, "acme", customer, "2026-03", contract)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}
	}
	const finalSQL = `SELECT period, startsWith(event_id, 'fixed:') AS fixed, item, element, currency,
			sum(quantity), sum(amount), count(), min(event_time), max(event_time)
			FROM rated_usage FINAL WHERE tenant = ? AND customer = ? AND period IN (?) AND contract = ?
			GROUP BY period, fixed, item, element, currency`
	const groupedSQL = `SELECT period, startsWith(event_id, 'fixed:') AS fixed, item, element, currency,
			sum(q), sum(a), count(), min(event_time), max(event_time)
			FROM (SELECT period, line_id, event_id, item, element, currency, event_time,
			             argMax(quantity, version) AS q, argMax(amount, version) AS a
			      FROM rated_usage WHERE tenant = ? AND customer = ? AND period IN (?) AND contract = ?
			      GROUP BY period, line_id, event_id, item, element, currency, event_time)
			GROUP BY period, fixed, item, element, currency`
	const argMaxAllSQL = `SELECT period, startsWith(eid, 'fixed:') AS fixed, item, element, currency,
		       sum(q) AS quantity, sum(a) AS amount, count() AS lines, min(t) AS first_time, max(t) AS last_time
		FROM (
		    SELECT period, line_id,
		           argMax(event_id, version) AS eid, argMax(item, version) AS item,
		           argMax(element, version) AS element, argMax(currency, version) AS currency,
		           argMax(quantity, version) AS q, argMax(amount, version) AS a,
		           argMax(event_time, version) AS t
		    FROM rated_usage
		    WHERE tenant = ? AND customer = ? AND period IN (?) AND contract = ?
		    GROUP BY period, line_id)
		GROUP BY period, fixed, item, element, currency`
	comparisons := []struct {
		name string
		run  func() error
	}{
		{"compare_final_typical_contract_one_month", raw(finalSQL, "c7", "sc-7-1")},
		{"compare_grouped_typical_contract_one_month", raw(groupedSQL, "c7", "sc-7-1")},
		{"compare_argmax_every_column_typical_contract_one_month", raw(argMaxAllSQL, "c7", "sc-7-1")},
		{"compare_argmax_every_column_heavy_contract_one_month", raw(argMaxAllSQL, "big", "sc-big")},
		{"compare_final_heavy_contract_one_month", raw(finalSQL, "big", "sc-big")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				items, err := q.Items(ctx, "acme", c.customer, c.contract, c.periods)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if c.wantItems > 0 && len(items) != c.wantItems {
					b.Fatalf("%d items, want %d", len(items), c.wantItems)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
	// The comparisons run after the reads above, on parts that had as much
	// time to merge: an advantage for them, not for the current query.
	for _, c := range comparisons {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func contractRated(tenant, customer, contract, period, eventID, element, item string, at time.Time) schemas.RatedLine {
	return schemas.RatedLine{
		LineID: schemas.LineID(tenant, eventID, item),
		Event: schemas.UsageEvent{Tenant: tenant, ID: eventID, Customer: customer, Element: element, Contract: contract,
			Quantity: dec("1.5"), Time: at, ReceivedAt: at.Add(time.Second)},
		Item: item, Amount: dec("3"), Currency: "JPY", Period: period, RatedAt: at.Add(2 * time.Second),
	}
}

// loadAverage is /proc/loadavg's three figures, for the record.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}
