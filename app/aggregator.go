package app

import (
	"context"

	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/internal/stream"
)

// initAggregator runs the aggregator stage: outcomes into the ClickHouse
// usage tables (component "aggregator").
func (a *App) initAggregator(context.Context) error {
	stage := aggregator.NewStage(a.ch, a.metrics, a.reg)
	cc := a.consumer(aggregator.StageName, "kakin-aggregator", aggregator.Topics)
	a.group.Go("aggregator", func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) })
	return nil
}
