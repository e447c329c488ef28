package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// Every test migrates a ClickHouse database of its own on the servers the
// package's tests share (testenv); in -short mode the tests skip themselves.
func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true, Kafka: true})
}

// catalogues serves fixed catalogues.
type catalogues map[string]*catalog.Catalogue

func (c catalogues) Catalogue(t string) *catalog.Catalogue { return c[t] }

// env is one test's database, clock and service.
type env struct {
	t       testing.TB
	conn    driver.Conn
	store   *billingdb.Store
	records *usagedb.Records
	periods *corrections.Periods
	svc     *Service
	now     time.Time
	cats    catalogues
	maxLine uint64
	offset  int64
}

func newEnv(t *testing.T) *env { return newEnvB(t) }

func newEnvB(t testing.TB) *env {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "br")
	rdb := testenv.Redis(t)
	e := &env{t: t, conn: conn, store: billingdb.New(conn), records: usagedb.NewRecords(conn),
		periods: corrections.NewPeriods(conn), cats: catalogues{}, maxLine: DefaultMaxLines,
		// The business clock: 3 December 2026, after November's end in every zone.
		now: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
	e.svc = New(Options{Store: e.store, Records: e.records, Catalogues: e.cats, Periods: e.periods, Redis: rdb,
		Now: func() time.Time { return e.now }, Log: slog.New(slog.DiscardHandler),
		MaxLines: func(context.Context, string) (uint64, error) { return e.maxLine, nil }})
	return e
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// loadCatalogue reads billing/testdata/month.yaml for the tenant.
func (e *env) loadCatalogue(tenant string) {
	f, err := os.Open("../testdata/month.yaml")
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	c, err := catalog.Decode(f)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Tenant = tenant
	e.cats[tenant] = c
}

var tokyo, _ = time.LoadLocation("Asia/Tokyo")

func ev(tenant, id, contract, element, qty string, month time.Month, day, hour int, received time.Time) schemas.UsageEvent {
	at := time.Date(2026, month, day, hour, 0, 0, 0, tokyo)
	if received.IsZero() {
		received = at.Add(time.Second)
	}
	return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c1", Contract: contract, Element: element,
		Quantity: dec(qty), Time: at, ReceivedAt: received}
}

// november is the month of billing/month_test.go (total 12,063 JPY).
func november(tenant string) []schemas.UsageEvent {
	return []schemas.UsageEvent{
		ev(tenant, "u1", "k-api", "calls", "800", 11, 1, 0, time.Time{}),
		ev(tenant, "u2", "k-api", "gb", "120", 11, 3, 9, time.Time{}),
		ev(tenant, "u3", "k-api", "calls", "1200", 11, 10, 12, time.Time{}),
		ev(tenant, "u4", "k-food", "meals", "2", 11, 15, 12, time.Time{}),
		ev(tenant, "u5", "k-api", "gb", "150", 11, 20, 9, time.Time{}),
		ev(tenant, "u6", "k-api", "calls", "1000", 11, 30, 23, time.Time{}),
		ev(tenant, "u7", "k-food", "meals", "1", 11, 30, 12, time.Time{}),
	}
}

// store writes records to usage_records as the aggregator does, in
// usage.accepted order, and optionally the stream's rated lines for them.
func (e *env) storeRecords(evs ...schemas.UsageEvent) {
	e.t.Helper()
	ctx := context.Background()
	var recs []usagedb.AcceptedRecord
	for _, x := range evs {
		e.offset++
		recs = append(recs, usagedb.AcceptedRecord{Event: x, Partition: 0, Offset: e.offset})
	}
	b, err := e.conn.PrepareBatch(ctx, usagedb.InsertInto("usage_records"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := usagedb.AppendRecords(b, recs, e.now); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		e.t.Fatal(err)
	}
}

// streamLines writes what the streaming rater would have written for the
// tenant's catalogue and records: each record's lines (same engine) and the
// period's fixed fees.
func (e *env) streamLines(tenant string, pid pricing.PeriodID, evs []schemas.UsageEvent, tweak func(*schemas.RatedLine)) {
	e.t.Helper()
	eng, err := pricing.Compile(e.cats[tenant])
	if err != nil {
		e.t.Fatal(err)
	}
	batch := eng.RatePeriod(evs)
	var lines []schemas.RatedLine
	for _, l := range batch.Lines {
		x := evs[l.Event]
		item := l.Key.Contract + "/" + l.Key.Item()
		lines = append(lines, schemas.RatedLine{LineID: schemas.LineID(tenant, x.ID, item), Event: x, Item: item,
			Amount: l.Line.Decimal(), Currency: l.Currency, Period: l.Key.Period.String(), RatedAt: e.now})
	}
	for _, k := range e.cats[tenant].ServiceContracts {
		fixed, err := eng.FixedCharges(k.ID, pid)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, fl := range fixed {
			id := fmt.Sprintf("fixed:%s:%s:%s:%s:%s", fl.Contract, fl.Period, fl.Plan, fl.Fee, fl.From)
			item := fl.Contract + "/" + fl.Fee
			lines = append(lines, schemas.RatedLine{LineID: schemas.LineID(tenant, id, item),
				Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: k.Customer, Element: fl.Fee, Contract: fl.Contract,
					Quantity: decimal.NewFromInt(fl.Quantity), Time: fl.BillOn.In(tokyo), ReceivedAt: e.now},
				Item: item, Amount: fl.Amount, Currency: fl.Currency, Period: fl.Period.String(), RatedAt: e.now})
		}
	}
	for i := range lines {
		if tweak != nil {
			tweak(&lines[i])
		}
	}
	ctx := context.Background()
	b, err := e.conn.PrepareBatch(ctx, usagedb.InsertInto("rated_usage"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := usagedb.AppendRated(b, lines); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		e.t.Fatal(err)
	}
}

// invalidate stores an invalidation of a record (generation 1).
func (e *env) invalidate(x schemas.UsageEvent) {
	e.t.Helper()
	ctx := context.Background()
	b, err := e.conn.PrepareBatch(ctx, usagedb.InsertInto("usage_status"))
	if err != nil {
		e.t.Fatal(err)
	}
	st := schemas.StatusChange{Event: x, Generation: 1, Action: schemas.ActionForGeneration(1),
		Status: schemas.StatusForGeneration(1), Actor: "t", RequestedAt: e.now, AppliedAt: e.now, Priced: true}
	if err := usagedb.AppendStatuses(b, []schemas.StatusChange{st}); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) run(tenant, period, runID string) Result {
	e.t.Helper()
	res, err := e.svc.Run(context.Background(), Request{Tenant: tenant, RunID: runID, Period: period, Actor: "test",
		Watermark: e.now})
	if err != nil {
		e.t.Fatalf("run %s: %v", period, err)
	}
	return res
}

// rawRows returns every stored row (no FINAL) of the receivable tables, as
// text, in a fixed order: what "byte-identical" is checked on.
func (e *env) rawRows(tenant string) []string {
	e.t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT * FROM receivables WHERE tenant = ? ORDER BY receivable_id, revision",
		"SELECT * FROM receivable_lines WHERE tenant = ? ORDER BY receivable_id, line_id, revision",
	} {
		rows, err := e.conn.Query(context.Background(), q, tenant)
		if err != nil {
			e.t.Fatal(err)
		}
		cols := rows.ColumnTypes()
		for rows.Next() {
			vals := make([]any, len(cols))
			for i, c := range cols {
				vals[i] = reflect.New(c.ScanType()).Interface()
			}
			if err := rows.Scan(vals...); err != nil {
				e.t.Fatal(err)
			}
			for i := range vals {
				vals[i] = reflect.ValueOf(vals[i]).Elem().Interface()
			}
			out = append(out, fmt.Sprint(vals...))
		}
		rows.Close()
	}
	return out
}

func decimalOf(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// crashingConn fails every insert into receivables: a process that died
// after writing a revision's lines.
type crashingConn struct{ driver.Conn }

func (c crashingConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	if strings.HasPrefix(q, "INSERT INTO receivables ") {
		return nil, errors.New("crash")
	}
	return c.Conn.PrepareBatch(ctx, q, opts...)
}
