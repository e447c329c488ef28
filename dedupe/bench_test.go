package dedupe

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
)

// benchBatch is the consumer batch size of a Kakin process (--batch-size).
const benchBatch = 5000

// claimBatch returns batch n of a benchmark tenant: benchBatch ids, of which
// every 20th repeats an id the previous batch claimed (5 % duplicates, as
// `make bench` sends) and the others are new.
func claimBatch(tenant string, n int, received time.Time, retention time.Duration) []ClaimRequest {
	reqs := make([]ClaimRequest, benchBatch)
	for i := range reqs {
		id := n*benchBatch + i
		if i%20 == 19 && n > 0 {
			id -= benchBatch + 1 // slot i-1 of the previous batch: never a repeat itself
		}
		reqs[i] = ClaimRequest{Tenant: tenant, ID: benchID(id),
			Retention: retention,
			Claim: schemas.Claim{Partition: i % 12, Offset: int64(n*benchBatch + i), PayloadHash: uint64(id) & 0xffffffff,
				ReceivedAt: received}}
	}
	return reqs
}

// BenchmarkClaim is the claim path of the dedupe stage: one pipelined round
// trip per batch of 5,000 records (5 % repeats), against the test's own
// redis-server (AOF on, as in the dev stack), starting from an empty tenant.
// It reports checks/s. BenchmarkClaim10M measures it at 10 million ids.
func BenchmarkClaim(b *testing.B) {
	if testing.Short() {
		b.Skip("needs redis-server")
	}
	ctx := context.Background()
	store := NewClaimStore(env.rdb)
	tenant := benchTenant()
	received := time.Now()
	start := time.Now()
	checks := 0
	for n := 0; b.Loop(); n++ {
		reqs := claimBatch(tenant, n, received, 35*24*time.Hour)
		if _, err := store.Claim(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		checks += len(reqs)
	}
	b.ReportMetric(float64(checks)/time.Since(start).Seconds(), "checks/s")
	b.ReportMetric(0, "ns/op")
}

// benchTenant is a tenant id of a realistic length (12 characters: the
// tenant is part of every bucket key, so its length is part of the cost).
func benchTenant() string { return fmt.Sprintf("bench-%06d", time.Now().UnixNano()/1000%1000000) }

// BenchmarkClaim10M fills one tenant with KAKIN_BENCH_DEDUPE_IDS distinct
// ids (the target: 10,000,000) and reports
//
//   - bytes/id: Redis memory per remembered id (INFO memory used_memory
//     before and after, over the distinct ids claimed);
//   - checks/s: the claim rate over the last tenth, with 5 % repeats, i.e.
//     with 90–100 % of the ids already remembered;
//   - fill-checks/s: the claim rate over the whole fill;
//   - %listpack: the share of sampled bucket keys in the compact encoding;
//   - sweep-s: one sweep over all of it (the hourly cost of expiry).
//
// It is skipped unless the variable is set: `make bench-dedupe` sets it.
func BenchmarkClaim10M(b *testing.B) {
	ids, _ := strconv.Atoi(os.Getenv("KAKIN_BENCH_DEDUPE_IDS"))
	if ids <= 0 || testing.Short() {
		b.Skip("set KAKIN_BENCH_DEDUPE_IDS (e.g. 10000000) to run; `make bench-dedupe` does")
	}
	ctx := context.Background()
	store := NewClaimStore(env.rdb)
	if os.Getenv("KAKIN_BENCH_DEDUPE_AOF") == "no" { // to see what the AOF costs
		if err := env.rdb.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
			b.Fatal(err)
		}
		defer env.rdb.ConfigSet(ctx, "appendonly", "yes")
	}
	aof := redisInfo(b, "persistence", "aof_enabled") == 1
	for b.Loop() {
		var cpu0 float64
		tenant := benchTenant()
		before := int64(redisInfo(b, "memory", "used_memory"))
		received := time.Now()
		batches := (ids + benchBatch - 1) / benchBatch
		last := batches - max(1, batches/10) // the last tenth is the measured steady state
		var lastChecks int
		var lastStart time.Time
		start := time.Now()
		for n := 0; n < batches; n++ {
			reqs := claimBatch(tenant, n, received, 35*24*time.Hour)
			if n < last { // the fill: distinct ids only
				for i := range reqs {
					reqs[i].ID = benchID(n*benchBatch + i)
				}
			} else if n == last {
				if err := env.rdb.ConfigResetStat(ctx).Err(); err != nil {
					b.Fatal(err)
				}
				cpu0 = redisInfo(b, "cpu", "used_cpu_user_main_thread") + redisInfo(b, "cpu", "used_cpu_sys_main_thread")
				lastStart = time.Now()
			}
			if rest := ids - n*benchBatch; rest < len(reqs) {
				reqs = reqs[:rest]
			}
			if _, err := store.Claim(ctx, reqs); err != nil {
				b.Fatal(err)
			}
			if n >= last {
				lastChecks += len(reqs)
			}
		}
		elapsed := time.Since(start)
		lastElapsed := time.Since(lastStart)
		redisCPU := redisInfo(b, "cpu", "used_cpu_user_main_thread") + redisInfo(b, "cpu", "used_cpu_sys_main_thread") - cpu0
		hsetnx, evalsha := commandUsec(b, "hsetnx"), commandUsec(b, "evalsha")
		after := int64(redisInfo(b, "memory", "used_memory"))
		distinct := ids - lastChecks/20 // the repeats of the last tenth add nothing
		keys, listpack := sampleEncodings(b, tenant, 2000)
		// One sweep over every bucket (nothing is old enough to delete):
		// the hourly cost of forgetting claims.
		sweepStart := time.Now()
		st, err := NewSweeper(env.rdb, nil, 0, 0, quiet, nil).Sweep(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sweepTook := time.Since(sweepStart)
		b.ReportMetric(sweepTook.Seconds(), "sweep-s")
		b.ReportMetric(redisCPU/float64(lastChecks)*1e6, "redis-cpu-µs/check")
		b.ReportMetric(float64(after-before)/float64(distinct), "bytes/id")
		b.ReportMetric(float64(lastChecks)/lastElapsed.Seconds(), "checks/s")
		b.ReportMetric(float64(ids)/elapsed.Seconds(), "fill-checks/s")
		b.ReportMetric(float64(listpack)/float64(keys)*100, "%listpack")
		b.ReportMetric(0, "ns/op")
		b.Logf("tenant %s: %d checks, %d distinct ids: used_memory %d → %d (%.1f MiB, %.1f bytes/id); "+
			"%.0f checks/s over the last %d (5 %% repeats), %.0f checks/s over the fill; %d of %d sampled buckets listpack; "+
			"a sweep of %d buckets (%d claims kept) took %v. Over the last tenth Redis's main thread used %.2f µs of CPU "+
			"per check (script calls %.2f µs per record, of which HSETNX %.2f µs); AOF on: %v",
			tenant, ids, distinct, before, after, float64(after-before)/(1<<20), float64(after-before)/float64(distinct),
			float64(lastChecks)/lastElapsed.Seconds(), lastChecks, float64(ids)/elapsed.Seconds(), listpack, keys,
			st.Buckets, st.Kept, sweepTook.Round(time.Millisecond), redisCPU/float64(lastChecks)*1e6,
			evalsha/float64(claimChunk), hsetnx, aof)
	}
}

func benchID(i int) string { return "evt-" + strconv.Itoa(i) + "-0123456789abcdef" }

// redisInfo is a numeric field of an INFO section.
func redisInfo(b *testing.B, section, field string) float64 {
	info, err := env.rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// commandUsec is INFO commandstats' usec_per_call of cmd (0 if not called).
func commandUsec(b *testing.B, cmd string) float64 {
	info, err := env.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":"); ok {
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					return f
				}
			}
		}
	}
	return 0
}

// sampleEncodings checks the encoding of up to n of tenant's bucket keys.
func sampleEncodings(b *testing.B, tenant string, n int) (keys, listpack int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		loc := locate(tenant, benchID(i))
		enc, err := env.rdb.ObjectEncoding(ctx, loc.key).Result()
		if err != nil {
			b.Fatal(err)
		}
		keys++
		if enc == "listpack" {
			listpack++
		}
	}
	return keys, listpack
}
