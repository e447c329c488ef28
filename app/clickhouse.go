package app

import (
	"context"

	"github.com/kakin-dev/kakin/internal/chdb"
)

// initClickHouse connects to ClickHouse (readiness "clickhouse"); the
// connection is closed last.
func (a *App) initClickHouse(ctx context.Context) error {
	conn, err := chdb.Open(ctx, a.cfg.ClickHouse.Chdb())
	if err != nil {
		return err
	}
	a.ch = conn
	a.onClose(func() { conn.Close() })
	a.group.Check("clickhouse", conn.Ping)
	return nil
}
