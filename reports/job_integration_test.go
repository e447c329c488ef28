package reports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/jobs"
)

type noCatalogue struct{}

func (noCatalogue) Get(string, catalogstore.Kind, string) (catalogstore.Entity, bool) {
	return catalogstore.Entity{}, false
}

// writeJobRow appends a row of a job as a process that was killed left it:
// processing, its worker's name still in the row, the given checkpoint.
func writeJobRow(t *testing.T, conn driver.Conn, j jobs.Job) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), `INSERT INTO jobs (tenant, job_id, kind, status, params, checkpoint, total,
		processed, accepted, rejected, error, created_by, created_at, updated_at, finished_at, worker, attempts, epoch, version)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(j.Tenant, j.ID, j.Kind, string(j.Status), string(j.Params), string(j.Checkpoint), uint64(0), uint64(0),
		uint64(0), uint64(0), "", "kc_1", j.CreatedAt, j.CreatedAt, time.Unix(0, 0).UTC(), j.Worker, uint32(0), j.Epoch, j.Version); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// A report whose process was killed mid-run is taken over by another
// process once its lease expires, and finishes exactly: killed while
// computing the days (partial rows of an older computation left behind), or
// after them while writing the file (a temporary file left behind).
func TestReportSurvivesAKilledProcess(t *testing.T) {
	for _, tc := range []struct {
		name       string
		checkpoint string
	}{
		{"killed computing the days", ""},
		{"killed writing the file", `{"phase":"days","version":%d}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := newConn(t)
			ctx := context.Background()
			recs, _, u3 := fixture("t1")
			store(t, conn, recs)
			invalidate(t, conn, u3)
			db := NewDB(conn)
			// What the killed run had written: a day row no computation of
			// today's records produces.
			w := newDailyWriter(ctx, db, "t1", "UTC", 1)
			if err := w.add(ctx, []DailyRow{{Day: day("2026-03-02"), Customer: "c1", Contract: "sc1", Element: "seats",
				User: "ghost", Quantity: dec("5"), DaySeconds: 86400}}); err != nil {
				t.Fatal(err)
			}
			if err := w.finish(ctx); err != nil {
				t.Fatal(err)
			}
			checkpoint := tc.checkpoint
			if checkpoint != "" { // the killed run had finished the days
				v := Version(time.Now())
				if _, err := db.ComputeDays(ctx, "t1", day("2026-03-01"), day("2026-03-03"), time.UTC, v); err != nil {
					t.Fatal(err)
				}
				checkpoint = fmt.Sprintf(checkpoint, v)
			}
			dir := t.TempDir()
			store := jobs.NewStore(conn)
			p := Params{Type: TypeUser, From: "2026-03-01", To: "2026-03-03"}
			p.Normalize()
			pj, _ := json.Marshal(p)
			j, err := store.Create(ctx, jobs.Job{Tenant: "t1", ID: jobs.NewID(), Kind: Kind, Params: pj, CreatedBy: "kc_1"})
			if err != nil {
				t.Fatal(err)
			}
			j.Status, j.Worker, j.Epoch, j.Version, j.Checkpoint = jobs.StatusProcessing, "killed:1", 1, 1<<32|1, json.RawMessage(checkpoint)
			writeJobRow(t, conn, j)
			tmp := filepath.Join(dir, fileName("t1", j.ID, FormatCSV)) + ".tmp"
			if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, []byte("half a fi"), 0o600); err != nil {
				t.Fatal(err)
			}

			rctx, cancel := context.WithCancel(ctx)
			runner := jobs.NewRunner(jobs.Options{Store: store, Redis: env.rdb, LeaseTTL: 2 * time.Second, Log: slog.New(slog.DiscardHandler)})
			runner.Register(Kind, NewHandler(db, noCatalogue{}, dir, slog.New(slog.DiscardHandler)))
			done := make(chan struct{})
			go func() { _ = runner.Run(rctx); close(done) }()
			defer func() { cancel(); <-done }()

			deadline := time.Now().Add(60 * time.Second)
			var got jobs.Job
			for {
				if got, err = store.Get(ctx, "t1", j.ID); err != nil {
					t.Fatal(err)
				}
				if got.Status.Final() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job still %s", got.Status)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got.Status != jobs.StatusCompleted || got.Attempts != 1 {
				t.Fatalf("job %s after %d attempts: %s", got.Status, got.Attempts, got.Error)
			}
			rep, err := FromJob(got)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, rep.Result.FileName))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, r := range rows[1:] {
				lines = append(lines, r[9]+"/"+r[12]+"/"+r[14]+" "+r[8])
			}
			want := "c1/u1/l1 1.5,c1/u2/l1 1,c1/u2/l2 2,c2/u4/ 1"
			if strings.Join(lines, ",") != want || rep.Result.Rows != 4 {
				t.Errorf("rows %v (%d), want %s", lines, rep.Result.Rows, want)
			}
			if _, err := os.Stat(tmp); !os.IsNotExist(err) {
				t.Errorf("temporary file left: %v", err)
			}
		})
	}
}
