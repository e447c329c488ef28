package rater

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/redis/go-redis/v9"
)

// rdb is a real redis-server shared by this package's integration tests;
// each test uses tenants of its own.
var rdb *redis.Client

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // integration tests skip themselves
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "rater", devstack.Want{Redis: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	rdb = redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	defer rdb.Close()
	return m.Run()
}
