package rater

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	if err := devstack.EnsureInstalled(ctx, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintln(os.Stderr, "rater tests: install dependencies:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kakin-rater-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	r, err := devstack.StartRedis(ctx, filepath.Join(dir, "redis"), 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Stop()
	rdb = redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	return m.Run()
}
