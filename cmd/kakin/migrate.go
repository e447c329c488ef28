package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
)

// runMigrate creates the Kafka topics and applies the ClickHouse
// migrations (kakin migrate).
func runMigrate(ctx context.Context, args []string) error {
	cfg, err := loadConfig("migrate", args)
	if err != nil {
		return err
	}
	return migrate(ctx, cfg, cfg.Log.Logger(os.Stderr))
}

// migrate creates the pipeline topics and applies the ClickHouse migrations.
func migrate(ctx context.Context, cfg app.Config, log *slog.Logger) error {
	var specs []stream.TopicSpec
	k := cfg.Kafka
	retention := int64(k.RetentionHours) * int64(time.Hour/time.Millisecond)
	for _, t := range schemas.Topics {
		specs = append(specs, stream.TopicSpec{Name: t, Partitions: k.Partitions, RetentionMS: retention,
			ReplicationFactor: k.ReplicationFactor, MinInsyncReplicas: k.MinInsyncReplicas})
	}
	conn, err := k.Conn()
	if err != nil {
		return err
	}
	if err := conn.CreateTopics(ctx, specs); err != nil {
		return err
	}
	log.Info("kafka topics ready", "topics", strings.Join(schemas.Topics, ","), "partitions", k.Partitions)
	if err := chdb.Migrate(ctx, cfg.ClickHouse.Chdb(), log); err != nil {
		return err
	}
	log.Info("clickhouse schema ready", "database", cfg.ClickHouse.Database)
	return nil
}
