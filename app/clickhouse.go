package app

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/chdb"
)

// clickHouseStartWait bounds how long a starting process waits for
// ClickHouse: a role started while ClickHouse restarts (a rolling upgrade,
// a crash) waits for it instead of exiting and being restarted in a loop.
const clickHouseStartWait = 2 * time.Minute

// initClickHouse connects to ClickHouse (readiness "clickhouse"), waiting up
// to clickHouseStartWait for it to answer; the connection is closed last.
func (a *App) initClickHouse(ctx context.Context) error {
	conn, err := openClickHouse(ctx, a.cfg.ClickHouse.Chdb(), clickHouseStartWait, a.log.Warn)
	if err != nil {
		return err
	}
	a.ch = conn
	a.onClose(func() { conn.Close() })
	a.group.Check("clickhouse", conn.Ping)
	if cfg := a.cfg.ClickHouse.Chdb(); cfg.Cluster != "" {
		w := chdb.NewReplicaWatch(a.reg, conn, cfg, a.log)
		a.group.Go("clickhouse_replicas", func(ctx context.Context) error { w.Run(ctx, chdb.ReplicaPoll); return nil })
	}
	return nil
}

// openClickHouse opens cfg, trying again with a growing pause (up to 5 s)
// until it answers, wait has passed or ctx ends; warn is told of each
// failed attempt.
func openClickHouse(ctx context.Context, cfg chdb.Config, wait time.Duration, warn func(msg string, args ...any)) (driver.Conn, error) {
	deadline := time.Now().Add(wait)
	pause := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		conn, err := chdb.Open(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return nil, fmt.Errorf("clickhouse did not answer within %s (%d attempts): %w", wait, attempt, err)
		}
		warn("clickhouse not answering yet; trying again", "attempt", attempt, "in", pause, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}
