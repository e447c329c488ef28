package app

import (
	"context"
	"time"
)

// The dedupe claims' Redis Cluster client gives up on a node this fast and
// retries a command this often, as the main Redis's does
// (internal/redismain); the callers' deadlines bound each command.
const (
	redisDialTimeout = 3 * time.Second
	redisIOTimeout   = 10 * time.Second
	redisMaxRetries  = 2
)

// initRedis creates the Redis client roles share (rate limits, locks,
// leases, running state, and the dedupe claims without a cluster): one
// server, or the primary the Sentinels name, followed across failovers
// (RedisConfig.Client, the constructor the one-off commands use too). It
// connects on first use; readiness is checked by the roles that need it.
func (a *App) initRedis(context.Context) error {
	rdb, err := a.cfg.Redis.Client()
	if err != nil {
		return err
	}
	a.rdb = rdb
	a.onClose(func() { rdb.Close() })
	return nil
}
