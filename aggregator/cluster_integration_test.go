package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// clusterEnv turns on the ClickHouse cluster tests (make test-cluster):
// they start ZooKeeper and four clickhouse-servers, too heavy for every
// `go test ./...`.
const clusterEnv = "KAKIN_TEST_CLUSTER"

// startCluster starts a 2 shards × 2 replicas cluster "kakin" and migrates
// database kakin onto it with --cluster; it skips the test without
// KAKIN_TEST_CLUSTER or without ZooKeeper.
func startCluster(t *testing.T) (*devstack.ClickHouseCluster, chdb.Config) {
	t.Helper()
	if testing.Short() || os.Getenv(clusterEnv) == "" {
		t.Skip("the ClickHouse cluster test runs with " + clusterEnv + "=1 (make test-cluster)")
	}
	ctx := context.Background()
	c, err := devstack.StartClickHouseCluster(ctx, filepath.Join(t.TempDir(), "cluster"), "kakin", 2, 2)
	if errors.Is(err, devstack.ErrNoZooKeeper) {
		t.Skipf("skipping the ClickHouse cluster test: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	// The aggregator talks to a server that is never killed.
	cfg := chdb.Config{Addr: c.Shards[1][0].Addr, Database: "kakin", User: "default", Cluster: c.Name}
	start := time.Now()
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("%v\n%s", err, c.LogTails())
	}
	t.Logf("migrate --cluster took %v", time.Since(start).Round(time.Millisecond))
	return c, cfg
}

// The aggregator inserts rated lines through the Distributed tables of a
// 2 × 2 cluster while one replica is SIGKILLed and later restarted; batches
// are redelivered (whole, and overlapping). Totals read through the
// Distributed tables during the outage never count a line twice nor more
// than was sent; the killed replica catches up with its peer; then the
// totals (FINAL, and the finance view) are exact.
func TestClusterKillReplicaMidStream(t *testing.T) {
	c, cfg := startCluster(t)
	ctx := context.Background()
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stage := newStage(conn)

	const batches, perBatch, customers = 40, 300, 37
	victim := c.Shards[0][1]
	want := decimal.Zero
	wantPer := map[string]decimal.Decimal{}
	var prev []kafka.Message
	killed := make(chan error, 1)
	send := func(msgs []kafka.Message) {
		t.Helper()
		// As the stage runner does: a failed batch is retried until it lands.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			err := stage.HandleBatch(ctx, msgs)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch never landed: %v", err)
			}
			t.Logf("insert failed, retrying: %v", err)
		}
	}
	start := time.Now()
	for b := range batches {
		var msgs []kafka.Message
		for i := range perBatch {
			n := b*perBatch + i
			tenant := fmt.Sprintf("t%d", n%3)
			customer := fmt.Sprintf("c%02d", n%customers)
			amount := decimal.New(int64(n%997)+1, -3)
			l := line(tenant, customer, "2026-03", fmt.Sprintf("e%06d", n), "api_calls", "1", amount.String(), "JPY")
			msgs = append(msgs, ratedMsg(t, n%4, int64(n), l))
			want = want.Add(amount)
			wantPer[tenant+"/"+customer] = wantPer[tenant+"/"+customer].Add(amount)
		}
		if b == 12 {
			// SIGKILL a replica of shard 1 while the next inserts run.
			go func() { killed <- victim.Kill() }()
		}
		send(msgs)
		if b%10 == 3 {
			send(msgs) // a whole batch redelivered: block deduplication
		}
		if prev != nil {
			send(append(append([]kafka.Message(nil), prev[perBatch/2:]...), msgs[:perBatch/3]...)) // overlapping redelivery
		}
		prev = msgs
		if b == 25 {
			if err := <-killed; err != nil {
				t.Fatal(err)
			}
			// While the replica is down, reads through the Distributed table
			// fail over to its peer, which may lack the last blocks the dead
			// replica acknowledged and had not yet shipped (they are on its
			// disk and come back with it): never more than was sent, never a
			// line twice.
			n, sum := totals(t, conn)
			if n > uint64((b+1)*perBatch) || sum.GreaterThan(want) {
				t.Fatalf("during the outage: %d lines, %s; more than the %d lines, %s sent", n, sum, (b+1)*perBatch, want)
			}
			t.Logf("during the outage: %d of %d lines visible", n, (b+1)*perBatch)
			if err := victim.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d lines inserted in %v", batches*perBatch, time.Since(start).Round(time.Millisecond))
	// The killed replica catches up: its local table equals its peer's.
	// Until then a read routed to it may miss the blocks written while it
	// was down (replication is asynchronous; docs/ARCHITECTURE.md).
	waitReplicaEqual(t, c.Shards[0][0], victim, "rated_usage_local")
	// Every replica of the other shard too: a read is routed to any replica,
	// and the one the insert did not go to may not have fetched its last
	// block yet.
	for _, s := range c.Shards[1] {
		syncReplica(t, s, "rated_usage_local")
	}
	checkTotals(t, conn, want, batches*perBatch)

	// The finance view (a view over the Distributed table with FINAL).
	rows, err := conn.Query(ctx, "SELECT tenant, customer, amount FROM finance_customer_totals")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		var tenant, customer string
		var amount decimal.Decimal
		if err := rows.Scan(&tenant, &customer, &amount); err != nil {
			t.Fatal(err)
		}
		if w := wantPer[tenant+"/"+customer]; !amount.Equal(w) {
			t.Errorf("finance_customer_totals %s/%s = %s, want %s", tenant, customer, amount, w)
		}
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if got != len(wantPer) {
		t.Errorf("finance_customer_totals has %d customers, want %d", got, len(wantPer))
	}

}

// totals reads count and sum of rated_usage FINAL through conn.
func totals(t *testing.T, conn driver.Conn) (uint64, decimal.Decimal) {
	t.Helper()
	var n uint64
	var sum decimal.Decimal
	err := conn.QueryRow(context.Background(), "SELECT count(), sum(amount) FROM rated_usage FINAL").Scan(&n, &sum)
	if err != nil {
		t.Fatal(err)
	}
	return n, sum
}

// checkTotals asserts count and sum of rated_usage FINAL through conn.
func checkTotals(t *testing.T, conn driver.Conn, want decimal.Decimal, lines uint64) {
	t.Helper()
	n, sum := totals(t, conn)
	if n != lines || !sum.Equal(want) {
		t.Fatalf("rated_usage FINAL through Distributed: %d lines, %s; want %d, %s", n, sum, lines, want)
	}
}

// localTotals reads count and sum of a local table FINAL on one server.
func localTotals(ctx context.Context, ch *devstack.ClickHouse, table string) (uint64, decimal.Decimal, error) {
	conn, err := chdb.Open(ctx, chdb.Config{Addr: ch.Addr, Database: "kakin", User: "default"})
	if err != nil {
		return 0, decimal.Zero, err
	}
	defer conn.Close()
	var n uint64
	var sum decimal.Decimal
	err = conn.QueryRow(ctx, "SELECT count(), sum(amount) FROM "+table+" FINAL").Scan(&n, &sum)
	return n, sum, err
}

// waitReplicaEqual waits until replica's table has what peer's has, after
// SYSTEM SYNC REPLICA on replica (which returns once its replication queue
// is empty).
func waitReplicaEqual(t *testing.T, peer, replica *devstack.ClickHouse, table string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	syncReplica(t, replica, table)
	pn, psum, err := localTotals(ctx, peer, table)
	if err != nil {
		t.Fatal(err)
	}
	rn, rsum, err := localTotals(ctx, replica, table)
	if err != nil {
		t.Fatal(err)
	}
	if pn == 0 || rn != pn || !rsum.Equal(psum) {
		t.Fatalf("replica %s has %d lines, %s; its peer %d, %s", replica.Addr, rn, rsum, pn, psum)
	}
	t.Logf("killed replica caught up (%d lines, %s) %v after the sync began", rn, rsum, time.Since(start).Round(time.Millisecond))
}

// syncReplica runs SYSTEM SYNC REPLICA table on ch: it returns once the
// replica has fetched every part its peers announced.
func syncReplica(t *testing.T, ch *devstack.ClickHouse, table string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := chdb.Open(ctx, chdb.Config{Addr: ch.Addr, Database: "kakin", User: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+table); err != nil {
		t.Fatalf("SYSTEM SYNC REPLICA %s on %s: %v", table, ch.Addr, err)
	}
}
