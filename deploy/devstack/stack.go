package devstack

import (
	"context"
	"fmt"
	"path/filepath"
)

// Stack is all three together.
type Stack struct {
	Redis      *Redis
	ClickHouse *ClickHouse
	Kafka      *Kafka
}

// Ports chooses the stack's ports; 0 picks a free port.
type Ports struct {
	Redis, ClickHouseTCP, ClickHouseHTTP, Kafka int
}

// StartStack starts all three with data in dir/redis, dir/clickhouse and
// dir/kafka. Kafka persists without per-write fsync. On error, whatever was
// started is stopped again.
func StartStack(ctx context.Context, dir string, ports Ports) (*Stack, error) {
	s := &Stack{}
	var err error
	if s.Redis, err = StartRedis(ctx, filepath.Join(dir, "redis"), ports.Redis); err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	if s.ClickHouse, err = StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), ports.ClickHouseTCP, ports.ClickHouseHTTP); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start stack: %w", err)
	}
	if s.Kafka, err = StartKafka(filepath.Join(dir, "kafka"), ports.Kafka, false); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start stack: %w", err)
	}
	return s, nil
}

// Stop stops all three, best effort, and logs nothing.
func (s *Stack) Stop() {
	if s == nil {
		return
	}
	if s.Kafka != nil {
		s.Kafka.Close()
	}
	if s.ClickHouse != nil {
		_ = s.ClickHouse.Stop()
	}
	if s.Redis != nil {
		_ = s.Redis.Stop()
	}
}
