package chdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Names of the metrics a process on a cluster exports from ReplicaDelays
// (ReplicaWatch): they exist only with --clickhouse-cluster.
const (
	ReplicaDelayMetric = "kakin_clickhouse_replica_delay_seconds"
	ReplicaUpMetric    = "kakin_clickhouse_replica_up"
)

// ReplicaState is one server of the cluster as ReplicaDelays saw it.
type ReplicaState struct {
	// Replica is the server's host:port as remote_servers names it.
	Replica string
	// Delay is the largest absolute_delay (system.replicas: how far the
	// server's oldest unfetched block is behind) over the database's
	// replicated tables on the server: a read routed there misses the rows
	// of that long. Queue is the sum of their queue_size.
	Delay time.Duration
	Queue uint64
	// Err is why the server did not answer (Delay and Queue unknown).
	Err error
}

// ReplicaDelays asks every server of cfg.Cluster (system.clusters, read
// through conn) for the replication state of cfg.Database's tables, each
// over a connection of its own with cfg's user and password, within
// timeout per server. A server that does not answer is reported with Err
// set, not as an error of the call; the call fails only when the cluster's
// servers cannot be listed.
func ReplicaDelays(ctx context.Context, conn driver.Conn, cfg Config, timeout time.Duration) ([]ReplicaState, error) {
	if cfg.Cluster == "" {
		return nil, errors.New("replica delays: no cluster configured")
	}
	rows, err := conn.Query(ctx, `SELECT host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num`, cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("replica delays: list the servers of %s: %w", cfg.Cluster, err)
	}
	var addrs []string
	for rows.Next() {
		var host string
		var port uint16
		if err := rows.Scan(&host, &port); err != nil {
			rows.Close()
			return nil, fmt.Errorf("replica delays: %w", err)
		}
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replica delays: %w", err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("replica delays: cluster %s has no servers in system.clusters", cfg.Cluster)
	}
	out := make([]ReplicaState, len(addrs))
	for i, addr := range addrs {
		out[i] = replicaState(ctx, cfg, addr, timeout)
	}
	return out, nil
}

// replicaState reads one server's system.replicas for cfg.Database.
func replicaState(ctx context.Context, cfg Config, addr string, timeout time.Duration) ReplicaState {
	st := ReplicaState{Replica: addr}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	one := cfg
	one.Addr = addr
	c, err := open(ctx, one, "default")
	if err != nil {
		st.Err = err
		return st
	}
	defer c.Close()
	var delay uint64
	err = c.QueryRow(ctx, `SELECT toUInt64(max(absolute_delay)), toUInt64(sum(queue_size)) FROM system.replicas WHERE database = ?`,
		cfg.Database).Scan(&delay, &st.Queue)
	if err != nil {
		st.Err = fmt.Errorf("clickhouse %s: system.replicas: %w", addr, err)
		return st
	}
	st.Delay = time.Duration(delay) * time.Second
	return st
}

// ReplicaPoll is how often a process on a cluster reads every server's
// replication state (ReplicaWatch).
const ReplicaPoll = 15 * time.Second

// ReplicaWatch exports, on a ClickHouse cluster, every server's replication
// state for Kakin's database (ReplicaDelays) as
// kakin_clickhouse_replica_delay_seconds{replica} and
// kakin_clickhouse_replica_up{replica}. Every process of the cluster
// exports the same figures; alert on their max by replica.
type ReplicaWatch struct {
	conn  driver.Conn
	cfg   Config
	log   *slog.Logger
	delay *prometheus.GaugeVec
	up    *prometheus.GaugeVec
}

// NewReplicaWatch registers the watch's gauges on reg; Poll or Run fill
// them.
func NewReplicaWatch(reg prometheus.Registerer, conn driver.Conn, cfg Config, log *slog.Logger) *ReplicaWatch {
	w := &ReplicaWatch{conn: conn, cfg: cfg, log: log,
		delay: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ReplicaDelayMetric,
			Help: "How far each ClickHouse server of the cluster is behind its replicas (system.replicas absolute_delay, the largest over Kakin's tables), in seconds; absent while the server does not answer."},
			[]string{"replica"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ReplicaUpMetric,
			Help: "1 if the ClickHouse server of the cluster answered the last replica-delay poll, 0 if not."},
			[]string{"replica"}),
	}
	reg.MustRegister(w.delay, w.up)
	return w
}

// Run polls every until ctx ends; a failed poll is logged, never fatal.
func (w *ReplicaWatch) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll reads every server once and replaces the gauges' series.
func (w *ReplicaWatch) Poll(ctx context.Context) {
	states, err := ReplicaDelays(ctx, w.conn, w.cfg, 5*time.Second)
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
