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

// claimBatch returns batch n of a benchmark tenant: benchBatch fresh ids,
// of which every 20th repeats an id of the previous batch (5 % duplicates,
// as `make bench` sends).
func claimBatch(tenant string, n int, received time.Time, retention time.Duration) []ClaimRequest {
	reqs := make([]ClaimRequest, benchBatch)
	for i := range reqs {
		id := n*benchBatch + i
		if i%20 == 19 && n > 0 {
			id -= benchBatch
		}
		reqs[i] = ClaimRequest{Tenant: tenant, ID: "evt-" + strconv.Itoa(id) + "-0123456789abcdef",
			Retention: retention,
			Claim: schemas.Claim{Partition: i % 12, Offset: int64(n*benchBatch + i), PayloadHash: uint64(id) & 0xffffffff,
				ReceivedAt: received}}
	}
	return reqs
}

// BenchmarkClaim is the claim path of the dedupe stage: one pipelined round
// trip per batch of 5,000 records, against the test's own redis-server (AOF
// on, as in the dev stack). It reports checks/s.
func BenchmarkClaim(b *testing.B) {
	if testing.Short() {
		b.Skip("needs redis-server")
	}
	ctx := context.Background()
	store := NewClaimStore(env.rdb)
	tenant := newTenant("bench-claim")
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

// BenchmarkClaimMemory claims KAKIN_BENCH_DEDUPE_IDS distinct ids (for the
// issue's target: 10,000,000) of one tenant and reports Redis memory per
// remembered id (INFO memory used_memory before and after), the claim rate,
// and the share of bucket keys still in the compact listpack encoding. It
// is skipped unless the variable is set: `make bench-dedupe` sets it.
func BenchmarkClaimMemory(b *testing.B) {
	ids, _ := strconv.Atoi(os.Getenv("KAKIN_BENCH_DEDUPE_IDS"))
	if ids <= 0 || testing.Short() {
		b.Skip("set KAKIN_BENCH_DEDUPE_IDS (e.g. 10000000) to run; `make bench-dedupe` does")
	}
	ctx := context.Background()
	store := NewClaimStore(env.rdb)
	for b.Loop() {
		tenant := newTenant("bench-mem")
		before := usedMemory(b)
		received := time.Now()
		start := time.Now()
		var elapsed time.Duration
		for n := 0; n*benchBatch < ids; n++ {
			reqs := claimBatch(tenant, n, received, 35*24*time.Hour)
			for i := range reqs { // all distinct here: memory per remembered id
				reqs[i].ID = "evt-" + strconv.Itoa(n*benchBatch+i) + "-0123456789abcdef"
			}
			if rest := ids - n*benchBatch; rest < len(reqs) {
				reqs = reqs[:rest]
			}
			if _, err := store.Claim(ctx, reqs); err != nil {
				b.Fatal(err)
			}
		}
		elapsed = time.Since(start)
		after := usedMemory(b)
		keys, listpack := sampleEncodings(b, tenant, 2000)
		b.ReportMetric(float64(after-before)/float64(ids), "bytes/id")
		b.ReportMetric(float64(ids)/elapsed.Seconds(), "checks/s")
		b.ReportMetric(float64(listpack)/float64(keys)*100, "%listpack")
		b.ReportMetric(0, "ns/op")
		b.Logf("%d ids: used_memory %d → %d (%.1f MiB), %.1f bytes/id, %.0f checks/s, %d of %d sampled buckets listpack",
			ids, before, after, float64(after-before)/(1<<20), float64(after-before)/float64(ids),
			float64(ids)/elapsed.Seconds(), listpack, keys)
	}
}

// usedMemory is INFO memory's used_memory.
func usedMemory(b *testing.B) int64 {
	info, err := env.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// sampleEncodings checks the encoding of up to n of tenant's bucket keys.
func sampleEncodings(b *testing.B, tenant string, n int) (keys, listpack int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		loc := locate(tenant, fmt.Sprintf("evt-%d-0123456789abcdef", i))
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
