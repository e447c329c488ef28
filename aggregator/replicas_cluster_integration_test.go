package aggregator

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/prometheus/client_golang/prometheus"
)

// chdb.ReplicaDelays and the gauges chdb.ReplicaWatch exports from it
// (kakin_clickhouse_replica_delay_seconds, kakin_clickhouse_replica_up) on
// a 2 × 2 cluster: every server is listed and in sync at first; a replica
// that stops fetching falls behind its peer's inserts and its delay grows
// (the others stay at 0), back to 0 once it fetches again; a SIGKILLed
// replica is reported as not answering.
func TestClusterReplicaDelays(t *testing.T) {
	c, cfg := startCluster(t)
	ctx := context.Background()
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	states := func() map[string]chdb.ReplicaState {
		t.Helper()
		got, err := chdb.ReplicaDelays(ctx, conn, cfg, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]chdb.ReplicaState{}
		for _, s := range got {
			out[s.Replica] = s
		}
		if len(out) != 4 || len(got) != 4 {
			t.Fatalf("ReplicaDelays listed %d servers (%d distinct), want the cluster's 4: %+v", len(got), len(out), got)
		}
		for _, srv := range c.Servers() {
			if _, ok := out[srv.Addr]; !ok {
				t.Fatalf("server %s not listed: %+v", srv.Addr, got)
			}
		}
		return out
	}
	waitFor := func(what string, cond func(map[string]chdb.ReplicaState) bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		var last map[string]chdb.ReplicaState
		for {
			if last = states(); cond(last) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; last: %+v", what, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	inSync := func(m map[string]chdb.ReplicaState) bool {
		for _, s := range m {
			if s.Err != nil || s.Delay != 0 {
				return false
			}
		}
		return true
	}
	waitFor("every server answering, none behind", inSync)

	// A replicated table of the test's own in Kakin's database (the delay
	// covers every table of it); the victim stops fetching its parts.
	peer, victim := c.Shards[0][0], c.Shards[0][1]
	if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE kakin.delay_probe ON CLUSTER %s (x UInt64) "+
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/kakin/delay_probe', '{replica}') ORDER BY x", c.Name)); err != nil {
		t.Fatalf("%v\n%s", err, c.LogTails())
	}
	on := func(addr, query string) {
		t.Helper()
		one := cfg
		one.Addr = addr
		cc, err := chdb.Open(ctx, one)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if err := cc.Exec(ctx, query); err != nil {
			t.Fatalf("%s on %s: %v", query, addr, err)
		}
	}
	on(victim.Addr, "SYSTEM STOP FETCHES kakin.delay_probe")
	on(peer.Addr, "INSERT INTO kakin.delay_probe SELECT number FROM system.numbers LIMIT 10")
	waitFor("the victim at least 2 s behind, the others not", func(m map[string]chdb.ReplicaState) bool {
		for addr, s := range m {
			if s.Err != nil || (addr == victim.Addr) != (s.Delay >= 2*time.Second) {
				return false
			}
		}
		return m[victim.Addr].Queue > 0
	})
	reg := prometheus.NewRegistry()
	watch := chdb.NewReplicaWatch(reg, conn, cfg, slog.New(slog.DiscardHandler))
	watch.Poll(ctx)
	if got := gauges(t, reg, chdb.ReplicaDelayMetric); len(got) != 4 || got[victim.Addr] < 2 || got[peer.Addr] != 0 {
		t.Errorf("%s = %v, want 4 servers, %s at 2 s or more, %s at 0", chdb.ReplicaDelayMetric, got, victim.Addr, peer.Addr)
	}
	if got := gauges(t, reg, chdb.ReplicaUpMetric); len(got) != 4 || got[victim.Addr] != 1 {
		t.Errorf("%s = %v, want 4 servers at 1", chdb.ReplicaUpMetric, got)
	}
	on(victim.Addr, "SYSTEM START FETCHES kakin.delay_probe")
	waitFor("the victim caught up", inSync)

	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor("the killed replica reported as not answering", func(m map[string]chdb.ReplicaState) bool {
		for addr, s := range m {
			if (addr == victim.Addr) != (s.Err != nil) {
				return false
			}
		}
		return true
	})
	watch.Poll(ctx)
	if got := gauges(t, reg, chdb.ReplicaUpMetric); len(got) != 4 || got[victim.Addr] != 0 || got[peer.Addr] != 1 {
		t.Errorf("%s = %v, want %s at 0, the others at 1", chdb.ReplicaUpMetric, got, victim.Addr)
	}
	if got := gauges(t, reg, chdb.ReplicaDelayMetric); len(got) != 3 {
		t.Errorf("%s = %v, want the 3 answering servers only", chdb.ReplicaDelayMetric, got)
	}
}

// gauges returns the values of the gauge family name in reg by its replica
// label.
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "replica" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}
