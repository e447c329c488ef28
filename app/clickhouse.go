package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/prometheus/client_golang/prometheus"
)

// clickHouseStartWait bounds how long a starting process waits for
// ClickHouse: a role started while ClickHouse restarts (a rolling upgrade,
// a crash) waits for it instead of exiting and being restarted in a loop.
const clickHouseStartWait = 2 * time.Minute

// initClickHouse connects to ClickHouse (readiness "clickhouse"), waiting up
// to clickHouseStartWait for it to answer; the connection is closed last.
func (a *App) initClickHouse(ctx context.Context) error {
	conn, err := openClickHouse(ctx, a.cfg.ClickHouse.Chdb(), clickHouseStartWait, a.log.Warn)
	if err != nil {
		return err
	}
	a.ch = conn
	a.onClose(func() { conn.Close() })
	a.group.Check("clickhouse", conn.Ping)
	if cfg := a.cfg.ClickHouse.Chdb(); cfg.Cluster != "" {
		w := newReplicaWatch(a.reg, conn, cfg, a.log)
		a.group.Go("clickhouse_replicas", func(ctx context.Context) error { w.run(ctx, replicaPoll); return nil })
	}
	return nil
}

// replicaPoll is how often a process on a cluster reads every replica's
// delay.
const replicaPoll = 15 * time.Second

// replicaWatch exports, on a ClickHouse cluster, every server's replication
// state for Kakin's database (chdb.ReplicaDelays):
// kakin_clickhouse_replica_delay_seconds{replica} and
// kakin_clickhouse_replica_up{replica}. Every process of the cluster
// exports the same figures; alert on their max by replica.
type replicaWatch struct {
	conn  driver.Conn
	cfg   chdb.Config
	log   *slog.Logger
	delay *prometheus.GaugeVec
	up    *prometheus.GaugeVec
}

func newReplicaWatch(reg prometheus.Registerer, conn driver.Conn, cfg chdb.Config, log *slog.Logger) *replicaWatch {
	w := &replicaWatch{conn: conn, cfg: cfg, log: log,
		delay: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: chdb.ReplicaDelayMetric,
			Help: "How far each ClickHouse server of the cluster is behind its replicas (system.replicas absolute_delay, the largest over Kakin's tables), in seconds; absent while the server does not answer."},
			[]string{"replica"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: chdb.ReplicaUpMetric,
			Help: "1 if the ClickHouse server of the cluster answered the last replica-delay poll, 0 if not."},
			[]string{"replica"}),
	}
	reg.MustRegister(w.delay, w.up)
	return w
}

// run polls every until ctx ends; a failed poll is logged, never fatal.
func (w *replicaWatch) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads every server once and replaces the gauges' series.
func (w *replicaWatch) poll(ctx context.Context) {
	states, err := chdb.ReplicaDelays(ctx, w.conn, w.cfg, 5*time.Second)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("clickhouse replica delays", "err", err)
		}
		return
	}
	w.delay.Reset()
	w.up.Reset()
	for _, s := range states {
		if s.Err != nil {
			w.up.WithLabelValues(s.Replica).Set(0)
			w.log.Warn("clickhouse replica not answering", "replica", s.Replica, "err", s.Err)
			continue
		}
		w.up.WithLabelValues(s.Replica).Set(1)
		w.delay.WithLabelValues(s.Replica).Set(s.Delay.Seconds())
	}
}

// openClickHouse opens cfg, trying again with a growing pause (up to 5 s)
// until it answers, wait has passed or ctx ends; warn is told of each
// failed attempt.
func openClickHouse(ctx context.Context, cfg chdb.Config, wait time.Duration, warn func(msg string, args ...any)) (driver.Conn, error) {
	deadline := time.Now().Add(wait)
	pause := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		conn, err := chdb.Open(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return nil, fmt.Errorf("clickhouse did not answer within %s (%d attempts): %w", wait, attempt, err)
		}
		warn("clickhouse not answering yet; trying again", "attempt", attempt, "in", pause, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}
