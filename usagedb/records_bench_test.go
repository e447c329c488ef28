package usagedb

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// BenchmarkRecordQueries seeds BENCH_RECORDS usage records (default
// 1,000,000) for 1,000 customers, each with its rated line, 1 % of them
// invalidated and 1 % duplicated, and measures the record searches.
//
//	go test -run '^$' -bench RecordQueries -benchtime 20x ./usagedb/
func BenchmarkRecordQueries(b *testing.B) {
	n := 1000000
	if s := os.Getenv("BENCH_RECORDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	conn := newDB(b)
	stage := newStage(conn)
	ctx := context.Background()
	seedStart := time.Now()
	const chunk = 50000
	for base := 0; base < n; base += chunk {
		var msgs []kafka.Message
		for i := base; i < min(base+chunk, n); i++ {
			id := fmt.Sprintf("e%08d", i)
			ev := record("acme", id, "c"+strconv.Itoa(i%1000), "api_calls", "", i%43200)
			l := line("acme", ev.Customer, "2026-03", id, "api_calls", "1.5", "3", "JPY")
			l.Event = ev
			msgs = append(msgs, acceptedMsg(b, i%12, int64(i), ev), ratedMsg(b, i%12, int64(i), l))
			if i%100 == 0 {
				msgs = append(msgs, statusMsg(b, i%12, int64(i), ev, 1))
			}
			if i%100 == 1 {
				d := duplicate("acme", id, i%12, int64(n+i), i%12, int64(i), false)
				d.Event.Customer = ev.Customer
				msgs = append(msgs, dupMsg(b, i%12, int64(n+i), d))
			}
		}
		if err := stage.HandleBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d records in %s", n, time.Since(seedStart).Round(time.Millisecond))
	r := NewRecords(conn)
	c7 := UsageFilter{Customer: "c7"}
	cases := []struct {
		name string
		run  func() error
	}{
		{"search_first_page_100", func() error { _, _, err := r.Search(ctx, "acme", RecordFilter{}, nil, 100); return err }},
		{"search_page_100_after_cursor", func() error {
			_, _, err := r.Search(ctx, "acme", RecordFilter{}, &RecordKey{ID: fmt.Sprintf("e%08d", n/2)}, 100)
			return err
		}},
		{"search_customer_page_100", func() error { _, _, err := r.Search(ctx, "acme", RecordFilter{UsageFilter: c7}, nil, 100); return err }},
		{"search_status_invalid_page_100", func() error {
			_, _, err := r.Search(ctx, "acme", RecordFilter{Status: StatusInvalid}, nil, 100)
			return err
		}},
		{"search_status_rated_customer_page_100", func() error {
			_, _, err := r.Search(ctx, "acme", RecordFilter{UsageFilter: c7, Status: StatusRated}, nil, 100)
			return err
		}},
		{"count_all", func() error { _, err := r.Count(ctx, "acme", RecordFilter{}); return err }},
		{"count_status_invalid", func() error { _, err := r.Count(ctx, "acme", RecordFilter{Status: StatusInvalid}); return err }},
		{"count_status_rated_tenant", func() error { _, err := r.Count(ctx, "acme", RecordFilter{Status: StatusRated}); return err }},
		{"get_one", func() error { _, err := r.Get(ctx, "acme", fmt.Sprintf("e%08d", n/3)); return err }},
		{"bulk_read_10000_events_and_states", func() error {
			window := time.Duration(10000*43200/n) * time.Minute // about 10,000 records
			evs, err := r.Events(ctx, "acme", RecordFilter{EventFrom: march, EventTo: march.Add(window)}, 10001)
			if err != nil {
				return err
			}
			ids := make([]string, len(evs))
			for i := range evs {
				ids[i] = evs[i].ID
			}
			_, err = r.States(ctx, "acme", ids)
			return err
		}},
		{"charges_customer_period", func() error { _, err := NewCharges(conn).Query(ctx, "acme", "c7", "2026-03"); return err }},
		{"charges_customer_period_without_status", func() error { // the query before corrections existed, for comparison
			rows, err := conn.Query(ctx, `SELECT element, currency, sum(quantity), sum(amount), count() FROM rated_usage FINAL
				WHERE tenant = ? AND customer = ? AND period = ? GROUP BY element, currency ORDER BY element, currency`, "acme", "c7", "2026-03")
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
			}
			return err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
