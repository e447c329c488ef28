package clients

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
)

// conn is one migrated database that the package's tests share (each test
// uses a tenant of its own); nil in -short mode (the tests that need it skip).
var conn driver.Conn

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true}, func(ctx context.Context) (err error) {
		conn, _, err = testenv.MigrateOnce(ctx, "admin_test")
		return err
	})
}
