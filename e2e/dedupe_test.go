package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
)

// TestDedupeWindowAndRedisLoss checks, through the built binary:
//
//   - a tenant's own dedupe window (kakin tenants set-dedupe-window) is what
//     ingest checks event times against: a day inside is accepted, a day
//     outside rejected with the reason, as is an event too far ahead;
//   - when Redis loses every claim (FLUSHALL), an already-rated event sent
//     again passes dedupe as new, yet the charge total does not change:
//     rated_usage is keyed by the line id (tenant, event id, item) and read
//     with FINAL — the second line of defence against double charging.
func TestDedupeWindowAndRedisLoss(t *testing.T) {
	e := newEnv(t, e2ePrices)
	e.run(t, "tenants", "create", "acme")
	e.run(t, "tenants", "set-dedupe-window", "acme", "2d")
	p := e.start("all", "all")
	ctx := context.Background()

	now := worldNow().UTC()
	// Ids of this test only: the Redis is shared with the other tests.
	ev := func(id string, qty int, at time.Time) string {
		return fmt.Sprintf(`{"id":"loss-%s","customer":"c1","element":"api_calls","quantity":%d,"time":%q}`, id, qty, at.Format(time.RFC3339))
	}
	body := strings.Join([]string{
		ev("w-in", 2, now.Add(-47*time.Hour)),  // 1 JPY
		ev("w-out", 2, now.Add(-49*time.Hour)), // outside acme's 2 days
		ev("w-future", 2, now.Add(25*time.Hour)),
		ev("e1", 4, now.Add(-time.Hour)), // 2 JPY
		ev("e2", 6, now.Add(-time.Hour)), // 3 JPY
	}, "\n")
	code, resp := post(t, p.url, "acme", []byte(body))
	if code != http.StatusAccepted || resp.Accepted != 3 || resp.Rejected != 2 {
		t.Fatalf("post: %d %+v", code, resp)
	}
	reasons := map[string]string{}
	for _, r := range resp.Results {
		for _, fe := range r.Errors {
			reasons[strings.TrimPrefix(r.ID, "loss-")] += fe.Field + ": " + fe.Reason
		}
	}
	if r := reasons["w-out"]; !strings.Contains(r, "time: is older than the tenant's duplicate-detection window of 2 days") {
		t.Errorf("w-out rejected with %q", r)
	}
	if r := reasons["w-future"]; !strings.Contains(r, "time: is more than 1 day in the future") {
		t.Errorf("w-future rejected with %q", r)
	}
	waitTotal := func(what string, lines uint64, dups uint64) totals {
		t.Helper()
		var r totals
		waitFor(t, 30*time.Second, what, func() (bool, string) {
			var err error
			if r, err = e.rated(ctx, "acme"); err != nil {
				return false, err.Error()
			}
			d := e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = 'acme'")
			return r.Lines == lines && d == dups, fmt.Sprintf("%d lines, total %s, %d duplicates; %s", r.Lines, r.Amount, d, e.lags(ctx))
		})
		return r
	}
	if r := waitTotal("the first three lines", 3, 0); !r.Amount.Equal(decimal.NewFromInt(6)) {
		t.Fatalf("total %s, want 6", r.Amount)
	}
	// While Redis remembers, a repeat is flagged.
	if code, _ := post(t, p.url, "acme", []byte(ev("e1", 4, now.Add(-time.Hour)))); code != http.StatusAccepted {
		t.Fatalf("repeat: %d", code)
	}
	waitTotal("the repeat flagged", 3, 1)

	// Redis loses everything. The same event again is not recognised by
	// dedupe; a new event of the same customer (same partition, so handled
	// after it at every hop) tells when it went through.
	rdb := redis.NewClient(&redis.Options{Addr: shared.redis})
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	body = ev("e1", 4, now.Add(-time.Hour)) + "\n" + ev("e3", 2, now.Add(-time.Hour)) // e3: 1 JPY
	if code, resp := post(t, p.url, "acme", []byte(body)); code != http.StatusAccepted || resp.Accepted != 2 {
		t.Fatalf("after FLUSHALL: %d %+v", code, resp)
	}
	r := waitTotal("the marker event after FLUSHALL", 4, 1)
	if !r.Amount.Equal(decimal.NewFromInt(7)) {
		t.Errorf("total after re-sending e1 without dedupe memory: %s, want 7 (6 + e3's 1; e1 not charged twice)", r.Amount)
	}
	// The re-sent e1 really went through dedupe and the rater as new: it
	// was not flagged, and both stages counted it.
	_, metrics := get(t, p.url+"/metrics", "")
	for _, want := range []string{
		`kakin_stage_records_total{outcome="accepted",stage="dedupe"} 5`, // w-in, e1, e2, e1 again, e3
		`kakin_stage_records_total{outcome="duplicate",stage="dedupe"} 1`,
		`kakin_stage_records_total{outcome="rated",stage="rater"} 5`,
		`kakin_dedupe_redis_up 1`,
		`kakin_dedupe_blocked_since_seconds 0`,
		`kakin_tenant_windows_stale 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestDedupeOnRedisCluster runs the pipeline with its dedupe claims on a
// Redis Cluster of two masters (--dedupe-redis-cluster): repeats are flagged
// exactly as with one Redis, the claims are spread over both masters, and
// none lands in the main Redis.
func TestDedupeOnRedisCluster(t *testing.T) {
	ctx := context.Background()
	cluster, err := devstack.StartRedisCluster(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	// The main Redis is shared with the other tests (acme included): note
	// its claim buckets, which must not change.
	main := redis.NewClient(&redis.Options{Addr: shared.redis})
	defer main.Close()
	mainBuckets := func() map[string]bool {
		keys, err := main.Keys(ctx, "dd:acme:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		for _, k := range keys {
			set[k] = true
		}
		return set
	}
	before := mainBuckets()
	e := newEnv(t, e2ePrices)
	e.extraEnv = append(e.extraEnv, "KAKIN_DEDUPE_REDIS_CLUSTER="+strings.Join(cluster.Addrs(), ","))
	e.run(t, "tenants", "create", "acme")
	p := e.start("all", "all")

	now := worldNow().UTC().Add(-time.Hour).Format(time.RFC3339)
	const n, repeats = 300, 40
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"id":"cl-%d","customer":"c%d","element":"api_calls","quantity":2,"time":%q}`, i, i%2+1, now))
	}
	for i := range repeats { // every 7th id again, in a later request
		lines = append(lines, lines[i*7])
	}
	for _, part := range [][]string{lines[:n], lines[n:]} {
		if code, resp := post(t, p.url, "acme", []byte(strings.Join(part, "\n"))); code != http.StatusAccepted || resp.Accepted != len(part) {
			t.Fatalf("post: %d %+v", code, resp)
		}
	}
	waitFor(t, 30*time.Second, "every record rated or flagged", func() (bool, string) {
		r, err := e.rated(ctx, "acme")
		if err != nil {
			return false, err.Error()
		}
		d := e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = 'acme'")
		return r.Lines == n && d == repeats && r.Amount.Equal(decimal.NewFromInt(n)),
			fmt.Sprintf("%d lines, total %s, %d duplicates; %s", r.Lines, r.Amount, d, e.lags(ctx))
	})
	perMaster := map[string]int{}
	for _, addr := range cluster.Addrs() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		keys, err := rdb.Keys(ctx, "dd:acme:*").Result()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		perMaster[addr] = len(keys)
		if len(keys) == 0 {
			t.Errorf("master %s holds no claims of acme", addr)
		}
	}
	for k := range mainBuckets() {
		if !before[k] {
			t.Errorf("main Redis got the claim bucket %q; the claims belong on the cluster", k)
		}
	}
	t.Logf("claim buckets per master: %v", perMaster)
}
