package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// Want names the servers a test package needs.
type Want struct {
	Redis, ClickHouse, Kafka bool
}

// TestServers are the real servers a test package's tests share.
type TestServers struct {
	Redis      *Redis
	ClickHouse *ClickHouse
	Kafka      *Kafka // in memory, without persistence
}

// StartForTests installs what is missing and starts the servers want names
// on free ports, with their data in a new temporary directory named after
// pkg. stop stops them and removes the directory. A package's TestMain calls
// it once (not in -short mode) and hands the servers to its tests.
func StartForTests(ctx context.Context, pkg string, want Want) (s *TestServers, stop func(), err error) {
	if err := EnsureInstalled(ctx, slog.New(slog.DiscardHandler)); err != nil {
		return nil, nil, fmt.Errorf("%s tests: install dependencies: %w", pkg, err)
	}
	dir, err := os.MkdirTemp("", "kakin-"+pkg+"-test-")
	if err != nil {
		return nil, nil, err
	}
	s = &TestServers{}
	stop = func() {
		if s.Kafka != nil {
			s.Kafka.Close()
		}
		if s.Redis != nil {
			s.Redis.Stop()
		}
		if s.ClickHouse != nil {
			s.ClickHouse.Stop()
		}
		os.RemoveAll(dir)
	}
	fail := func(err error) (*TestServers, func(), error) {
		stop()
		return nil, nil, fmt.Errorf("%s tests: %w", pkg, err)
	}
	if want.ClickHouse {
		if s.ClickHouse, err = StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), 0, 0); err != nil {
			return fail(err)
		}
	}
	if want.Redis {
		if s.Redis, err = StartRedis(ctx, filepath.Join(dir, "redis"), 0); err != nil {
			return fail(err)
		}
	}
	if want.Kafka {
		if s.Kafka, err = StartKafka("", 0, false); err != nil {
			return fail(err)
		}
	}
	return s, stop, nil
}
