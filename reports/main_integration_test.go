package reports

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
)

// env is the real ClickHouse and Redis every test of this package shares;
// each test migrates a database of its own.
var env struct {
	ch  *devstack.ClickHouse
	rdb *redis.Client
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // integration tests skip themselves
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "reports", devstack.Want{ClickHouse: true, Redis: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	env.ch = srv.ClickHouse
	env.rdb = redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	defer env.rdb.Close()
	return m.Run()
}

var dbSeq atomic.Int64
var unsafeIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// newConn migrates a fresh database for the test and returns a connection.
func newConn(t testing.TB) driver.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("needs clickhouse-server and redis-server; skipped in -short mode")
	}
	name := fmt.Sprintf("rep_%s_%d", unsafeIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), dbSeq.Add(1))
	if len(name) > 60 {
		name = fmt.Sprintf("rep_%d_%d", time.Now().UnixNano(), dbSeq.Add(1))
	}
	cfg := chdb.Config{Addr: env.ch.Addr, Database: name, User: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		conn.Close()
	})
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
