package tenants

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/testenv"
)

// shared is the ClickHouse server and migrated database of the tests that
// need one; nil in -short mode (those tests skip, the rest still run).
var shared struct {
	cfg  chdb.Config
	conn driver.Conn
}

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true}, func(ctx context.Context) (err error) {
		shared.conn, shared.cfg, err = testenv.MigrateOnce(ctx, "tenants_test")
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
	return NewStore(shared.conn)
}
