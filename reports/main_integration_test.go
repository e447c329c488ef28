package reports

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
)

// env is the real ClickHouse and Redis every test of this package shares
// (testenv); each test migrates a database of its own.
var env struct {
	rdb *redis.Client
}

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true}, func(context.Context) error {
		env.rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		testenv.AtExit(func() { env.rdb.Close() })
		return nil
	})
}

// newConn migrates a fresh database for the test and returns a connection;
// the database is dropped when the test ends.
func newConn(t testing.TB) driver.Conn {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "rep")
	return conn
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// rec is a usage record of a subscriber setting its level at t.
func rec(tenant, id, customer, contract, element, qty string, t time.Time, attrs map[string]string) usagedb.AcceptedRecord {
	return usagedb.AcceptedRecord{Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Contract: contract,
		Element: element, Quantity: dec(qty), Time: t, ReceivedAt: t.Add(time.Minute), Attributes: attrs}}
}

// store writes usage records as the aggregator does.
func store(t testing.TB, conn driver.Conn, recs []usagedb.AcceptedRecord) {
	t.Helper()
	ctx := context.Background()
	for start := 0; start < len(recs); start += 100_000 {
		end := min(start+100_000, len(recs))
		b, err := conn.PrepareBatch(ctx, usagedb.InsertInto("usage_records"))
		if err != nil {
			t.Fatal(err)
		}
		if err := usagedb.AppendRecords(b, recs[start:end], time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
}

// invalidate stores an invalidation (generation 1) of a record.
func invalidate(t testing.TB, conn driver.Conn, r usagedb.AcceptedRecord) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), usagedb.InsertInto("usage_status"))
	if err != nil {
		t.Fatal(err)
	}
	st := schemas.StatusChange{Event: r.Event, Generation: 1, Action: schemas.ActionForGeneration(1),
		Status: schemas.StatusForGeneration(1), Actor: "t", RequestedAt: time.Now().UTC(), AppliedAt: time.Now().UTC(), Priced: true}
	if err := usagedb.AppendStatuses(b, []schemas.StatusChange{st}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
