package main

import (
	"errors"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/redismain"
	"github.com/redis/go-redis/v9"
)

// checkRedisSentinel refuses Sentinels without a master name.
func (c *config) checkRedisSentinel() error {
	if strings.TrimSpace(c.RedisSentinelAddrs) != "" && c.RedisSentinelMaster == "" {
		return errors.New("--redis-sentinel-addrs needs --redis-sentinel-master (KAKIN_REDIS_SENTINEL_MASTER)")
	}
	return nil
}

// mainRedis is the client of the main Redis: --redis-addr, or the primary
// the Sentinels of --redis-sentinel-addrs name (loadConfig checked the master
// name is set).
func (c *config) mainRedis() *redis.Client {
	rc := redismain.Config{Addr: c.RedisAddr, Master: c.RedisSentinelMaster}
	for _, a := range strings.Split(c.RedisSentinelAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			rc.SentinelAddrs = append(rc.SentinelAddrs, a)
		}
	}
	rdb, err := redismain.NewClient(rc)
	if err != nil {
		// Unreachable after checkRedisSentinel; a client of --redis-addr keeps the
		// process's behaviour defined.
		rdb, _ = redismain.NewClient(redismain.Config{Addr: c.RedisAddr})
	}
	return rdb
}

// stateReplicas is how many replicas must have each running-state save
// before the rater counts it done, and how long a save waits for them: one
// with Sentinel (a failover promotes a replica; a save it lacks would be
// lost, and with it the guarantee that no record is charged twice), none
// with a single Redis (whose AOF with appendfsync always is the durability).
func (c *config) stateReplicas() (int, time.Duration) {
	if strings.TrimSpace(c.RedisSentinelAddrs) == "" {
		return 0, 0
	}
	return 1, 2 * time.Second
}
