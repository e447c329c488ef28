package dedupe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A sweep deletes the claims older than their tenant's window + skew +
// PurgeGrace, keeps the rest (which still answer claims), and deletes a
// bucket it leaves empty. Each tenant's own window applies. On a cluster it
// sweeps every master.
func TestSweep(t *testing.T) { eachRedis(t, testSweep) }

func testSweep(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	short, long := newTenant("sweep-short"), newTenant("sweep-long")
	const window, skew = 2 * 24 * time.Hour, time.Hour
	windows := windowsMap{short: window, long: 10 * window}
	now := clock.Now().Truncate(time.Second)
	limit := window + skew + PurgeGrace // how long a claim of `short` may stay
	store := NewClaimStore(rdb)
	mk := func(tenant, id string, age time.Duration) ClaimRequest {
		return ClaimRequest{Tenant: tenant, ID: id, Retention: window + skew,
			Claim: schemas.Claim{Partition: 0, Offset: 1, PayloadHash: 1, ReceivedAt: now.Add(-age)}}
	}
	reqs := []ClaimRequest{
		mk(short, "old", limit+time.Second),
		mk(short, "edge", limit),
		mk(short, "fresh", time.Hour),
		mk(long, "old-for-short", limit+time.Second), // long's window keeps it
	}
	for i := range 50 { // a bucket of their own, all old: the bucket goes away
		reqs = append(reqs, mk(short, fmt.Sprintf("bulk-%d", i), limit+time.Hour))
	}
	if _, err := store.Claim(ctx, reqs); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sw := NewSweeper(rdb, windows, skew, time.Hour, quiet, reg)
	sw.now = func() time.Time { return now }
	st, err := sw.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	present := func(tenant, id string) bool {
		loc := locate(tenant, id)
		ok, err := rdb.HExists(ctx, loc.key, loc.field).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, c := range []struct {
		tenant, id string
		want       bool
	}{{short, "old", false}, {short, "edge", true}, {short, "fresh", true}, {long, "old-for-short", true}} {
		if got := present(c.tenant, c.id); got != c.want {
			t.Errorf("%s/%s present after the sweep: %v, want %v", c.tenant, c.id, got, c.want)
		}
	}
	for i := range 50 {
		if present(short, fmt.Sprintf("bulk-%d", i)) {
			t.Fatalf("bulk-%d survived the sweep", i)
		}
	}
	if st.Deleted < 51 || testutil.ToFloat64(sw.deleted) != float64(st.Deleted) {
		t.Errorf("sweep reported %d deleted (metric %v), want at least the 51 old claims of this test", st.Deleted, testutil.ToFloat64(sw.deleted))
	}
	if testutil.ToFloat64(sw.lastSuccess) != float64(now.Unix()) {
		t.Errorf("last success gauge %v, want %d", testutil.ToFloat64(sw.lastSuccess), now.Unix())
	}
	// Buckets holding only swept claims are gone.
	emptied := 0
	for i := range 50 {
		k := locate(short, fmt.Sprintf("bulk-%d", i)).key
		if n, _ := rdb.Exists(ctx, k).Result(); n == 0 {
			emptied++
		}
	}
	if emptied == 0 {
		t.Error("no bucket was deleted although all its claims were swept")
	}
	// The claims kept still answer.
	got, err := store.Claim(ctx, []ClaimRequest{mk(short, "fresh", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].ReceivedAt.Equal(now.Add(-time.Hour)) {
		t.Errorf("claim kept by the sweep answers %+v, want the one received an hour ago", got[0])
	}
}

// Without tenant windows a sweep deletes nothing: a guessed window could
// delete live claims.
func TestSweepWithoutWindows(t *testing.T) { eachRedis(t, testSweepWithoutWindows) }

func testSweepWithoutWindows(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	tenant := newTenant("sweep-nowindows")
	old := ClaimRequest{Tenant: tenant, ID: "old", Retention: time.Hour,
		Claim: schemas.Claim{ReceivedAt: clock.Now().Add(-100 * 24 * time.Hour)}}
	if _, err := NewClaimStore(rdb).Claim(ctx, []ClaimRequest{old}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSweeper(rdb, windowsMap(nil), 0, time.Hour, quiet, nil).Sweep(ctx); err == nil {
		t.Fatal("sweep without windows succeeded")
	}
	loc := locate(tenant, "old")
	if ok, _ := rdb.HExists(ctx, loc.key, loc.field).Result(); !ok {
		t.Error("sweep without windows deleted a claim")
	}
}

// Of the processes sharing a Redis, one sweeps per interval.
func TestSweepersShareTheWork(t *testing.T) {
	needServers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.rdb.Del(ctx, sweepLockKey).Err(); err != nil {
		t.Fatal(err)
	}
	var sweepers []*Sweeper
	var wg sync.WaitGroup
	for range 3 {
		sw := NewSweeper(env.rdb, windowsMap{}, 0, time.Hour, quiet, nil)
		sweepers = append(sweepers, sw)
		wg.Add(1)
		go func() { defer wg.Done(); _ = sw.Run(ctx) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	swept := 0
	for swept == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		swept = 0
		for _, sw := range sweepers {
			if testutil.ToFloat64(sw.lastSuccess) > 0 {
				swept++
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // give a second sweep a chance to happen, wrongly
	cancel()
	wg.Wait()
	swept = 0
	for _, sw := range sweepers {
		if testutil.ToFloat64(sw.lastSuccess) > 0 {
			swept++
		}
	}
	if swept != 1 {
		t.Errorf("%d of 3 sweepers swept in one interval, want 1", swept)
	}
	if err := env.rdb.Del(context.Background(), sweepLockKey).Err(); err != nil {
		t.Fatal(err)
	}
}

// switchWindows are not loaded until loaded is set.
type switchWindows struct{ loaded atomic.Bool }

func (w *switchWindows) Window(string) (time.Duration, bool) { return DefaultWindow, w.loaded.Load() }

// Run takes no lock and sweeps nothing until the tenant windows are loaded,
// then sweeps.
func TestSweeperWaitsForWindows(t *testing.T) {
	needServers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.rdb.Del(ctx, sweepLockKey).Err(); err != nil {
		t.Fatal(err)
	}
	defer env.rdb.Del(context.Background(), sweepLockKey)
	w := &switchWindows{}
	sw := NewSweeper(env.rdb, w, 0, time.Hour, quiet, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = sw.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	if n, _ := env.rdb.Exists(ctx, sweepLockKey).Result(); n != 0 || testutil.ToFloat64(sw.lastSuccess) != 0 {
		t.Fatal("swept (or took the lock) before the windows were loaded")
	}
	w.loaded.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(sw.lastSuccess) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no sweep within seconds of the windows being loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
