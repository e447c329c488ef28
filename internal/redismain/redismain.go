// Package redismain opens the main Redis (rater running state, locks,
// leases, rate limits, and the dedupe claims without a Redis Cluster): one
// server by address, or a primary found and followed through Redis Sentinel
// (go-redis's failover client), so that a failover moves every process to
// the new primary without a restart.
package redismain

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config locates the main Redis.
type Config struct {
	// Addr is the server's host:port when no Sentinel is configured.
	Addr string
	// SentinelAddrs are the Sentinels' host:port; when set, Master names
	// the monitored primary and Addr is not used.
	SentinelAddrs []string
	Master        string
}

// NewClient returns a client of the main Redis with Kakin's timeouts:
// callers' context deadlines bound every command.
func NewClient(cfg Config) (*redis.Client, error) {
	const dial, rw = 3 * time.Second, 10 * time.Second
	if len(cfg.SentinelAddrs) == 0 {
		return redis.NewClient(&redis.Options{Addr: cfg.Addr, DialTimeout: dial,
			ReadTimeout: rw, WriteTimeout: rw, MaxRetries: 2, ContextTimeoutEnabled: true}), nil
	}
	if cfg.Master == "" {
		return nil, fmt.Errorf("redis sentinel: the master name is empty (--redis-sentinel-master)")
	}
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: cfg.Master, SentinelAddrs: cfg.SentinelAddrs,
		DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw,
		// Retried commands ride out the seconds of a failover: the client
		// asks the Sentinels for the new primary on every reconnect.
		MaxRetries: 5, MinRetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: time.Second,
		ContextTimeoutEnabled: true,
	}), nil
}

// Wait queues WAIT n timeout in pipe, after the writes it must cover:
// Redis's WAIT covers the writes of its own connection, so it must share
// the writes' pipeline (one connection). Writes a failover must not lose
// (the rater's running state) use it: a Sentinel failover promotes a
// replica, and a write that replica had not received is gone. Check the
// answer with Waited once the pipeline ran. n = 0 queues nothing (nil).
func Wait(ctx context.Context, pipe redis.Pipeliner, n int, timeout time.Duration) *redis.Cmd {
	if n <= 0 {
		return nil
	}
	return pipe.Do(ctx, "WAIT", n, timeout.Milliseconds())
}

// Waited reports an error unless the WAIT cmd (from Wait; nil passes)
// counted at least n replicas.
func Waited(cmd *redis.Cmd, n int) error {
	if cmd == nil {
		return nil
	}
	got, err := cmd.Int()
	if err != nil {
		return fmt.Errorf("redis WAIT %d: %w", n, err)
	}
	if got < n {
		return fmt.Errorf("redis WAIT: %d of %d replicas acknowledged the writes", got, n)
	}
	return nil
}
