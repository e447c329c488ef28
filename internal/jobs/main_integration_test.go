package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// env is the Redis client every test of this package shares (testenv); each
// test migrates a database of its own and uses tenants of its own.
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

// newStore migrates a fresh database for the test and returns a store on it.
func newStore(t *testing.T) (*Store, driver.Conn) {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "jobs")
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
