package main

import (
	"errors"
	"strings"

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
