package auth

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/tenants"
)

// shared is the ClickHouse server and migrated database of the tests that
// need one; nil in -short mode (those tests skip, the rest still run).
var shared struct {
	ch    *devstack.ClickHouse
	cfg   chdb.Config
	conn  driver.Conn
	redis *devstack.Redis // for the token endpoint's attempt limits (token_limit_test.go)
}

// testHash keeps argon2id cheap in tests (the format and code path are the
// same as in production).
var testHash = HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kakin-auth-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if shared.ch, err = devstack.StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "auth tests: start clickhouse:", err)
		return 1
	}
	defer shared.ch.Stop()
	if shared.redis, err = devstack.StartRedis(ctx, filepath.Join(dir, "redis"), 0); err != nil {
		fmt.Fprintln(os.Stderr, "auth tests: start redis:", err)
		return 1
	}
	defer shared.redis.Stop()
	shared.cfg = chdb.Config{Addr: shared.ch.Addr, Database: "auth_test", User: "default"}
	if err := chdb.Migrate(ctx, shared.cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "auth tests: migrate:", err)
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
	s := NewStore(shared.conn, tenants.NewStore(shared.conn))
	s.Hash = testHash
	return s
}
