package rater

import (
	"context"
	"testing"

	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// rdb is a real redis-server shared by this package's integration tests;
// each test uses tenants of its own.
var rdb *redis.Client

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Redis: true}, func(context.Context) error {
		rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		testenv.AtExit(func() { rdb.Close() })
		return nil
	})
}
