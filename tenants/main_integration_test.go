package tenants

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
)

// shared is the ClickHouse server and migrated database of the tests that
// need one; nil in -short mode (those tests skip, the rest still run).
var shared struct {
	cfg  chdb.Config
	conn driver.Conn
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "tenants", devstack.Want{ClickHouse: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	shared.cfg = chdb.Config{Addr: srv.ClickHouse.Addr, Database: "tenants_test", User: "default"}
	if err := chdb.Migrate(ctx, shared.cfg, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintln(os.Stderr, "tenants tests: migrate:", err)
		return 1
	}
	if shared.conn, err = chdb.Open(ctx, shared.cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer shared.conn.Close()
	return m.Run()
}

// needClickHouse skips t in -short mode.
func needClickHouse(t testing.TB) {
	t.Helper()
	if shared.conn == nil {
		t.Skip("needs ClickHouse (not in -short mode)")
	}
}

func testStore(t testing.TB) *Store {
	t.Helper()
	needClickHouse(t)
	return NewStore(shared.conn)
}
