package testenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true}) }

func TestDatabaseName(t *testing.T) {
	long := strings.Repeat("x", 100)
	a, b := testenv.DatabaseName(t, long), testenv.DatabaseName(t, long)
	if a == b {
		t.Fatalf("two names for one test are both %q", a)
	}
	if len(a) > 60 || len(b) > 60 {
		t.Fatalf("names longer than 60: %q, %q", a, b)
	}
	t.Run("Sub/Test-Name", func(t *testing.T) {
		if n := testenv.DatabaseName(t, "p"); strings.ContainsAny(n, "/-") || !strings.HasPrefix(n, "p_testdatabasename_sub_test_name_") {
			t.Fatalf("name %q", n)
		}
	})
}

// Each test's database is migrated, its own, and gone after the test.
func TestClickHouseFreshPerTest(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		conn, cfg := testenv.ClickHouse(t, "te")
		first = cfg.Database
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM kakin_migrations").Scan(&n); err != nil || n == 0 {
			t.Fatalf("kakin_migrations: %d rows, %v; want the migrations applied", n, err)
		}
		if err := conn.Exec(ctx, "INSERT INTO tenants (tenant, name) SELECT 'only-here', 'x'"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		conn, cfg := testenv.ClickHouse(t, "te")
		if cfg.Database == first {
			t.Fatalf("both tests got database %s", first)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM tenants").Scan(&n); err != nil || n != 0 {
			t.Fatalf("a fresh database holds %d tenants (%v), want none", n, err)
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", first).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the first test's database %s is still there (%d, %v)", first, n, err)
		}
	})
}

func TestRedis(t *testing.T) {
	rdb := testenv.Redis(t)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if testenv.RedisServer() == nil || testenv.RedisAddr() == "" {
		t.Fatal("no redis-server")
	}
}
