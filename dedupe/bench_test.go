package dedupe

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
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
// With KAKIN_BENCH_DEDUPE_REDIS=cluster both run against the test's Redis
// Cluster of two masters instead.
func BenchmarkClaim(b *testing.B) {
	if testing.Short() {
		b.Skip("needs redis-server")
	}
	ctx := context.Background()
	client, _ := benchTarget(b)
	store := NewClaimStore(client)
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
	client, nodes := benchTarget(b)
	store := NewClaimStore(client)
	if os.Getenv("KAKIN_BENCH_DEDUPE_AOF") == "no" { // to see what the AOF costs
		for _, n := range nodes {
			if err := n.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
				b.Fatal(err)
			}
			defer n.ConfigSet(ctx, "appendonly", "yes")
		}
	}
	redisInfo := func(section, field string) float64 { return redisInfo(b, nodes, section, field) }
	aof := redisInfo("persistence", "aof_enabled") > 0
	for b.Loop() {
		var cpu0 float64
		tenant := benchTenant()
		before := int64(redisInfo("memory", "used_memory"))
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
				for _, n := range nodes {
					if err := n.ConfigResetStat(ctx).Err(); err != nil {
						b.Fatal(err)
					}
				}
				cpu0 = redisInfo("cpu", "used_cpu_user_main_thread") + redisInfo("cpu", "used_cpu_sys_main_thread")
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
		redisCPU := redisInfo("cpu", "used_cpu_user_main_thread") + redisInfo("cpu", "used_cpu_sys_main_thread") - cpu0
		hsetnxCalls, hsetnxUsec := commandStats(b, nodes, "hsetnx")
		_, evalshaUsec := commandStats(b, nodes, "evalsha")
		after := int64(redisInfo("memory", "used_memory"))
		distinct := ids - lastChecks/20 // the repeats of the last tenth add nothing
		keys, listpack := sampleEncodings(b, client, tenant, 2000)
		// One sweep over every bucket (nothing is old enough to delete):
		// the hourly cost of forgetting claims.
		sweepStart := time.Now()
		st, err := NewSweeper(client, nil, 0, 0, quiet, nil).Sweep(ctx)
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
			"per check (script calls %.2f µs per record, of which HSETNX %.2f µs); AOF on: %v; Redis masters: %d",
			tenant, ids, distinct, before, after, float64(after-before)/(1<<20), float64(after-before)/float64(distinct),
			float64(lastChecks)/lastElapsed.Seconds(), lastChecks, float64(ids)/elapsed.Seconds(), listpack, keys,
			st.Buckets, st.Kept, sweepTook.Round(time.Millisecond), redisCPU/float64(lastChecks)*1e6,
			evalshaUsec/float64(lastChecks), hsetnxUsec/max(1, hsetnxCalls), aof, len(nodes))
	}
}

func benchID(i int) string { return "evt-" + strconv.Itoa(i) + "-0123456789abcdef" }

// benchTarget is the Redis the claim benchmarks use, and its masters: the
// test's redis-server, or with KAKIN_BENCH_DEDUPE_REDIS=cluster its Redis
// Cluster.
func benchTarget(b *testing.B) (redis.UniversalClient, []*redis.Client) {
	if os.Getenv("KAKIN_BENCH_DEDUPE_REDIS") != "cluster" {
		return env.rdb, []*redis.Client{env.rdb}
	}
	var nodes []*redis.Client
	for _, addr := range env.cluster.Addrs() {
		n := redis.NewClient(&redis.Options{Addr: addr})
		b.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	return env.crdb, nodes
}

// redisInfo is a numeric field of an INFO section, summed over nodes.
func redisInfo(b *testing.B, nodes []*redis.Client, section, field string) float64 {
	var sum float64
	for _, n := range nodes {
		info, err := n.Info(context.Background(), section).Result()
		if err != nil {
			b.Fatal(err)
		}
		found := false
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				sum, found = sum+f, true
			}
		}
		if !found {
			b.Fatalf("INFO %s has no %s", section, field)
		}
	}
	return sum
}

// commandStats is INFO commandstats' calls and usec of cmd, summed over nodes.
func commandStats(b *testing.B, nodes []*redis.Client, cmd string) (calls, usec float64) {
	for _, n := range nodes {
		info, err := n.Info(context.Background(), "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.Lines(info) {
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":")
			if !ok {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "calls="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					calls += f
				} else if v, ok := strings.CutPrefix(kv, "usec="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					usec += f
				}
			}
		}
	}
	return calls, usec
}

// sampleEncodings checks the encoding of up to n of tenant's bucket keys.
func sampleEncodings(b *testing.B, client redis.UniversalClient, tenant string, n int) (keys, listpack int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		loc := locate(tenant, benchID(i))
		node := client
		if cluster, ok := client.(*redis.ClusterClient); ok {
			master, err := cluster.MasterForKey(ctx, loc.key)
			if err != nil {
				b.Fatal(err)
			}
			node = master
		}
		enc, err := node.ObjectEncoding(ctx, loc.key).Result()
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

// discard is a producer that acknowledges everything at once.
type discard struct{}

func (discard) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// BenchmarkStage is the dedupe stage without the broker: HandleBatch on
// batches of 5,000 usage.raw records as ingest writes them (5 % repeats),
// decoding each, claiming them in Redis and building the output records,
// whose write is discarded. It reports records/s and the stage process's own
// CPU per record (the rest of a core's time is Redis's and the benchmark's).
func BenchmarkStage(b *testing.B) {
	if testing.Short() {
		b.Skip("needs redis-server")
	}
	client, _ := benchTarget(b)
	stage := NewStage(NewClaimStore(client), discard{}, stream.NewMetrics(prometheus.NewRegistry()), Options{})
	tenant := benchTenant()
	received := time.Now().UTC()
	// The records as ingest writes them: JSON, keyed, with the claim headers.
	// They are built from a template (json.Marshal here would leave the
	// stage's timing full of the benchmark's own garbage collection).
	stamp := received.Format(time.RFC3339Nano)
	encode := func(n int) []kafka.Message {
		reqs := claimBatch(tenant, n, received, time.Hour)
		msgs := make([]kafka.Message, len(reqs))
		for i, r := range reqs {
			e := schemas.UsageEvent{Tenant: tenant, ID: r.ID, Customer: "cust-" + strconv.Itoa(i%1000), Element: "api_calls",
				Quantity: decimal.NewFromInt(int64(i%7 + 1)), Time: received, ReceivedAt: received,
				Attributes: map[string]string{"region": "jp"}}
			v := fmt.Appendf(nil, `{"tenant":%q,"id":%q,"customer":%q,"element":"api_calls","quantity":"%d","time":%q,"attributes":{"region":"jp"},"received_at":%q}`,
				e.Tenant, e.ID, e.Customer, i%7+1, stamp, stamp)
			msgs[i] = kafka.Message{Topic: schemas.TopicRaw, Partition: i % 12, Offset: int64(n*benchBatch + i),
				Key: e.PartitionKey(), Value: v, Time: received, Headers: schemas.RawHeaders(&e)}
		}
		return msgs
	}
	ctx := context.Background()
	records := 0
	var busy, cpu time.Duration
	for n := 0; b.Loop(); n++ {
		b.StopTimer()
		msgs := encode(n) // not the stage's work: excluded from time and CPU
		b.StartTimer()
		c0, t0 := processCPU(b), time.Now()
		if err := stage.HandleBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		busy += time.Since(t0)
		cpu += processCPU(b) - c0
		records += len(msgs)
	}
	b.ReportMetric(float64(records)/busy.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/float64(records)*1e6, "stage-cpu-µs/record")
	b.ReportMetric(0, "ns/op")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
