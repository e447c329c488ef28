package reports

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/usagedb"
)

// BenchmarkReport1M builds a user report of 1,000,000 rows: 1,000,000
// subscribers (1,000 customers of 1,000 users) each provisioned once during
// the day, so one daily row and one report row each. An iteration is what a
// report job does: compute the day from usage_records FINAL into
// usage_daily, read it back grouped and write the CSV (or Parquet) file.
//
//	go test -run '^$' -bench BenchmarkReport1M -benchtime 2x ./reports/
func BenchmarkReport1M(b *testing.B) {
	conn := newConn(b)
	users := benchUsers()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]usagedb.AcceptedRecord, 0, users)
	for i := range int(users) {
		c := "c" + strconv.Itoa(i/1000)
		recs = append(recs, rec("t1", "e"+strconv.Itoa(i), c, "sc-"+c, "seats", "1", start.Add(time.Duration(i%43200)*time.Second),
			map[string]string{"user": "u" + strconv.Itoa(i), "workspace": "w" + strconv.Itoa(i%50), "location": "l" + strconv.Itoa(i%7)}))
	}
	store(b, conn, recs)
	recs = nil
	db := NewDB(conn)
	h := NewHandler(db, noCatalogue{}, b.TempDir(), slog.New(slog.DiscardHandler))
	for _, f := range []Format{FormatCSV, FormatParquet} {
		b.Run(string(f), func(b *testing.B) {
			ctx := context.Background()
			p := Params{Type: TypeUser, From: "2026-03-01", To: "2026-03-01", Format: f}
			p.Normalize()
			var days, compute, write time.Duration
			n := 0
			for b.Loop() {
				t0 := time.Now()
				v := Version(time.Now())
				if _, err := db.ComputeDays(ctx, "t1", day("2026-03-01"), day("2026-03-01"), time.UTC, v); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				res := Result{Phase: phaseDays, Version: v}
				if err := h.writeFile(ctx, "t1", fmt.Sprintf("job_bench%d", n), p, &res); err != nil {
					b.Fatal(err)
				}
				if res.Rows != users {
					b.Fatalf("%d rows, want %d", res.Rows, users)
				}
				days, write = days+t1.Sub(t0), write+time.Since(t1)
				compute += time.Since(t0)
				n++
				if fi, err := os.Stat(h.dir + "/" + res.FileName); err == nil {
					b.ReportMetric(float64(fi.Size())/1e6, "MB")
				}
			}
			b.ReportMetric(days.Seconds()/float64(n), "days-s/op")
			b.ReportMetric(write.Seconds()/float64(n), "file-s/op")
			b.ReportMetric(compute.Seconds()/float64(n), "total-s/op")
		})
	}
}

// benchUsers is 1,000,000 unless KAKIN_BENCH_REPORT_USERS says otherwise.
func benchUsers() int64 {
	if n, err := strconv.ParseInt(os.Getenv("KAKIN_BENCH_REPORT_USERS"), 10, 64); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}
