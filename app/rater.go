package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/runstate"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
)

// initRater runs the rater stage (usage.accepted → usage.rated or
// usage.unrated), the catalogue engines it prices with and the fixed-fee
// emitter (raterComponents). Tenants with a stored catalogue are priced by
// its compiled engine with running state in Redis; the others by the price
// list file. A re-rate request waits for the aggregator's group to have
// stored every output the rater wrote before it.
func (a *App) initRater(ctx context.Context) error {
	cfg := a.cfg.Rater
	pl, err := pricelist.Load(cfg.PriceList)
	if err != nil {
		return err
	}
	// A lost state save misprices later records: say so when the state's
	// Redis does not fsync before it answers (docs/ARCHITECTURE.md "If
	// Redis loses its data").
	runstate.ReportDurability(ctx, a.rdb, a.reg, a.log)
	engines := rater.NewEngines(a.replica, a.log, a.reg)
	kc := a.kafka.Client(10 * time.Second)
	stage := rater.NewStage(pl, a.writer(""), a.metrics).
		WithEngines(engines, runstate.New(a.rdb, cfg.StateTTL).WithReplicaWait(a.cfg.Redis.StateReplicas())).
		WithRerate(usagedb.NewRecords(a.ch),
			&stream.GroupCaughtUp{Client: kc, Group: "kakin-aggregator",
				Topics: []string{schemas.TopicRated, schemas.TopicUnrated, schemas.TopicStatus}}, cfg.RerateWait)
	fixed := rater.NewFixedFees(a.replica, engines, a.writer(""), a.metrics, a.log).WithRecords(usagedb.NewRecords(a.ch))
	cc := a.consumer(rater.StageName, "kakin-rater", []string{schemas.TopicAccepted})
	cc.MaxWait = a.cfg.Kafka.HopWait()
	cc.AttemptTimeout = raterAttemptTimeout(cfg.RerateWait)
	for _, c := range raterComponents(a.replica.WaitReady, engines.Refresh, engines.Run,
		func(ctx context.Context) error { return fixed.Run(ctx, time.Minute) },
		func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) }) {
		a.group.Go(c.name, c.run)
	}
	return nil
}

// raterAttemptTimeout is the rater consumer's deadline per batch: a re-rate
// request in the batch may wait up to rerateWait for the aggregator, and the
// batch then still needs the usual time to be priced and written.
func raterAttemptTimeout(rerateWait time.Duration) time.Duration {
	return rerateWait + stream.DefaultAttemptTimeout
}

// raterComponents are the rater role's components: the catalogue engines
// (recompiled on every catalogue change), the fixed-fee emitter and the
// usage.accepted consumer. Each is a component of the group like any
// other: supervised, and waited for before the Kafka writers it uses are
// closed. None starts before the catalogue replica is loaded (ready): a
// catalogue tenant's usage must not fall to the price list, nor its fixed
// fees be looked for in an empty catalogue; each compiles the engines
// (refresh) before it starts, so none depends on the others having started.
func raterComponents(ready func(context.Context) error, refresh func(), engines, fixedFees, consume func(context.Context) error) []component {
	afterCatalogue := func(run func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := ready(ctx); err != nil {
				if ctx.Err() != nil {
					return nil // stopping
				}
				return fmt.Errorf("wait for the catalogue: %w", err)
			}
			refresh()
			return run(ctx)
		}
	}
	return []component{
		{name: "rater_catalogue_engines", run: afterCatalogue(engines)},
		{name: "rater_fixed_fees", run: afterCatalogue(fixedFees)},
		{name: "rater", run: afterCatalogue(consume)},
	}
}
