package reports

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/redis/go-redis/v9"
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
	conn, _ := testenv.ClickHouse(t, "arep")
	return conn
}
