package app

import (
	"context"
	"time"

	"github.com/kakin-dev/kakin/internal/redismain"
	"github.com/redis/go-redis/v9"
)

// Every Redis client of a process gives up on a node this fast and
// retries a command this often; the callers' deadlines bound each command.
const (
	redisDialTimeout = 3 * time.Second
	redisIOTimeout   = 10 * time.Second
	redisMaxRetries  = 2
)

// initRedis creates the Redis client roles share (rate limits, locks,
// leases, running state, and the dedupe claims without a cluster). It
// connects on first use; readiness is checked by the roles that need it.
func (a *App) initRedis(context.Context) error {
	var rdb *redis.Client
	if rc := a.cfg.Redis.Redismain(); len(rc.SentinelAddrs) > 0 {
		// Through Sentinel: the failover client follows the primary.
		var err error
		if rdb, err = redismain.NewClient(rc); err != nil {
			return err
		}
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: a.cfg.Redis.Addr, DialTimeout: redisDialTimeout,
			ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout, MaxRetries: redisMaxRetries,
			ContextTimeoutEnabled: true})
	}
	a.rdb = rdb
	a.onClose(func() { rdb.Close() })
	return nil
}
