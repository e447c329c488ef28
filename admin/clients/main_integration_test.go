package clients

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

// conn is a migrated database on the ClickHouse server the package's tests
// share; nil in -short mode (the tests that need it skip).
var conn driver.Conn

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "clients", devstack.Want{ClickHouse: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	cfg := chdb.Config{Addr: srv.ClickHouse.Addr, Database: "admin_test", User: "default"}
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if conn, err = chdb.Open(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	return m.Run()
}
