package jobs

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
	"github.com/redis/go-redis/v9"
)

// env is the real Redis and ClickHouse every test of this package shares;
// each test migrates a database of its own and uses tenants of its own.
var env struct {
	redis *devstack.Redis
	ch    *devstack.ClickHouse
	rdb   *redis.Client
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // integration tests skip themselves
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "jobs", devstack.Want{ClickHouse: true, Redis: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	env.redis, env.ch = srv.Redis, srv.ClickHouse
	env.rdb = redis.NewClient(&redis.Options{Addr: env.redis.Addr})
	defer env.rdb.Close()
	return m.Run()
}

var dbSeq atomic.Int64
var unsafeIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// newStore migrates a fresh database for the test and returns a store on it.
func newStore(t *testing.T) (*Store, driver.Conn) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server and clickhouse-server; skipped in -short mode")
	}
	name := fmt.Sprintf("jobs_%s_%d", unsafeIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), dbSeq.Add(1))
	cfg := chdb.Config{Addr: env.ch.Addr, Database: name, User: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		conn.Close()
	})
	return NewStore(conn), conn
}

// newTenant returns a tenant id no other test (or earlier run) has used.
func newTenant(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}
