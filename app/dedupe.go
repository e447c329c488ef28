package app

import (
	"context"

	"github.com/kakin-dev/kakin/dedupe"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
)

// initDedupe runs the dedupe stage (usage.raw → usage.accepted or
// usage.duplicates; component "dedupe") and the sweeper of expired claims
// (component "dedupe_sweeper"). The claims live in the shared Redis, or in
// a Redis Cluster of their own (readiness "redis" either way).
func (a *App) initDedupe(context.Context) error {
	claimsRedis := redis.UniversalClient(a.rdb)
	if seeds := splitList(a.cfg.Dedupe.RedisCluster); len(seeds) > 0 {
		cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisMaxRetries, ContextTimeoutEnabled: true})
		a.onClose(func() { cluster.Close() })
		claimsRedis = cluster
	}
	claims := dedupe.NewClaimStore(claimsRedis)
	a.group.Check("redis", claims.Ping)
	skew := a.cfg.Ingest.MaxFutureSkew
	stage := dedupe.NewStage(claims, a.writer(""), a.metrics,
		dedupe.Options{Windows: a.windows, FutureSkew: skew, Registerer: a.reg})
	sweeper := dedupe.NewSweeper(claimsRedis, a.windows, skew, 0, a.log, a.reg)
	cc := a.consumer(dedupe.StageName, "kakin-dedupe", []string{schemas.TopicRaw})
	a.group.Go("dedupe", func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) })
	a.group.Go("dedupe_sweeper", sweeper.Run)
	return nil
}
