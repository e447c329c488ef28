package auth

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/tenants"
)

// shared is the migrated database of the tests that need one (on the
// package's ClickHouse server, testenv) and the package's Redis; nil in
// -short mode (those tests skip, the rest still run).
var shared struct {
	cfg   chdb.Config
	conn  driver.Conn
	redis *devstack.Redis // for the token endpoint's attempt limits (token_limit_test.go)
}

// testHash keeps argon2id cheap in tests (the format and code path are the
// same as in production).
var testHash = HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true}, func(ctx context.Context) (err error) {
		shared.redis = testenv.RedisServer()
		shared.conn, shared.cfg, err = testenv.MigrateOnce(ctx, "auth_test")
		return err
	})
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
