package dedupe

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
)

// claim is a claim received at second s after testStart (times near now, so
// that a sweep by another test never deletes them).
func claim(p int, o int64, fingerprint uint64, s int64) schemas.Claim {
	return schemas.Claim{Partition: p, Offset: o, PayloadHash: fingerprint, ReceivedAt: time.Unix(testStart+s, 0).UTC()}
}

var testStart = clock.Now().Unix()

func sameClaim(a, b schemas.Claim) bool {
	return a.Partition == b.Partition && a.Offset == b.Offset && a.PayloadHash == b.PayloadHash && a.ReceivedAt.Equal(b.ReceivedAt)
}

func req(tenant, id string, c schemas.Claim) ClaimRequest {
	return ClaimRequest{Tenant: tenant, ID: id, Claim: c, Retention: time.Hour}
}

// bucketsOf returns the distinct bucket keys of tenant's ids.
func bucketsOf(tenant string, ids ...string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		out[locate(tenant, id).key] = true
	}
	return out
}

// eachRedis runs test against the single redis-server and against the Redis
// Cluster.
func eachRedis(t *testing.T, test func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	needServers(t)
	for _, target := range []struct {
		name string
		rdb  redis.UniversalClient
	}{{"redis", env.rdb}, {"cluster", env.crdb}} {
		t.Run(target.name, func(t *testing.T) { test(t, target.rdb) })
	}
}

// nodeFor is the server that holds key: rdb itself, or the cluster's master
// for key.
func nodeFor(t *testing.T, rdb redis.UniversalClient, key string) redis.UniversalClient {
	t.Helper()
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb
	}
	master, err := cluster.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return master
}

// scanKeys returns the keys matching pattern, on every master of a cluster.
func scanKeys(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	err := eachServer(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, pattern, 100).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// ClaimStore.Claim against a real Redis and a real Redis Cluster: each step
// is one pipelined call and sees the claims of the steps before it.
func TestClaimStoreClaim(t *testing.T) { eachRedis(t, testClaimStoreClaim) }

func testClaimStoreClaim(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	store := NewClaimStore(rdb)
	ta, tb := newTenant("claims-a"), newTenant("claims-b")

	// The largest values each packed field holds check that the encoding
	// round-trips every bit.
	first := claim(0xffff, 1<<48-1, 0xfedcba98, 0)
	later := claim(1, 20, 0x01234567, 1)
	steps := []struct {
		name string
		reqs []ClaimRequest
		want []schemas.Claim
	}{
		{"first claim wins",
			[]ClaimRequest{req(ta, "e1", first)},
			[]schemas.Claim{first}},
		{"a later record from another partition gets the first claim back",
			[]ClaimRequest{req(ta, "e1", later)},
			[]schemas.Claim{first}},
		{"another offset of the same partition gets the first claim back",
			[]ClaimRequest{req(ta, "e1", claim(0xffff, 11, 7, 2))},
			[]schemas.Claim{first}},
		{"the claiming record redelivered gets its own claim back",
			[]ClaimRequest{req(ta, "e1", first)},
			[]schemas.Claim{first}},
		{"a redelivery whose received time or fingerprint changed still gets the stored claim",
			[]ClaimRequest{req(ta, "e1", claim(0xffff, 1<<48-1, 1, 3))},
			[]schemas.Claim{first}},
		{"the same id under another tenant is independent",
			[]ClaimRequest{req(tb, "e1", later)},
			[]schemas.Claim{later}},
		{"other ids are independent",
			[]ClaimRequest{req(ta, "e2", later), req(ta, "E1", claim(2, 5, 5, 5))},
			[]schemas.Claim{later, claim(2, 5, 5, 5)}},
		{"duplicates inside one call resolve in order",
			[]ClaimRequest{
				req(ta, "p1", claim(0, 100, 1, 1000)),
				req(ta, "p1", claim(1, 101, 2, 2000)),
				req(ta, "p2", claim(2, 102, 3, 3000)),
				req(ta, "p1", claim(2, 103, 1, 3500)),
				req(ta, "p2", claim(2, 102, 3, 3000)), // redelivered within the call
				req(tb, "p1", claim(1, 104, 9, 3600)),
			},
			[]schemas.Claim{
				claim(0, 100, 1, 1000),
				claim(0, 100, 1, 1000),
				claim(2, 102, 3, 3000),
				claim(0, 100, 1, 1000),
				claim(2, 102, 3, 3000),
				claim(1, 104, 9, 3600),
			}},
		{"an empty call claims nothing", nil, []schemas.Claim{}},
	}
	for _, st := range steps {
		got, err := store.Claim(ctx, st.reqs)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if len(got) != len(st.want) {
			t.Fatalf("%s: %d claims back, want %d", st.name, len(got), len(st.want))
		}
		for i := range got {
			if !sameClaim(got[i], st.want[i]) {
				t.Errorf("%s: request %d got claim %+v, want %+v", st.name, i, got[i], st.want[i])
			}
		}
	}

	// Buckets carry no TTL: only the sweeper forgets claims (sweep.go).
	for key := range bucketsOf(ta, "e1", "e2", "E1", "p1", "p2") {
		ttl, err := rdb.TTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl != -1 {
			t.Errorf("bucket %q: TTL %v, want none", key, ttl)
		}
	}
	// Nothing but the buckets of the tenant's ids, each a compact listpack
	// holding 8-byte fields and 16-byte claims.
	want := bucketsOf(ta, "e1", "e2", "E1", "p1", "p2")
	fields := 0
	for _, key := range scanKeys(t, rdb, "dd:"+ta+":*") {
		if !want[key] {
			t.Errorf("unexpected key %q", key)
		}
		if enc, _ := nodeFor(t, rdb, key).ObjectEncoding(ctx, key).Result(); enc != "listpack" {
			t.Errorf("bucket %q encoded as %q, want listpack", key, enc)
		}
		all, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range all {
			if len(f) != fieldLen || len(v) != claimLen {
				t.Errorf("bucket %q: field of %d bytes, claim of %d; want %d and %d", key, len(f), len(v), fieldLen, claimLen)
			}
			fields++
		}
	}
	if fields != 5 { // e1, e2, E1, p1, p2
		t.Errorf("%d claims stored for tenant %s, want 5", fields, ta)
	}
}

// The received time is kept to the second: a claim reads back as the
// record's time truncated to the second, in UTC.
func TestClaimStoreReceivedTimePrecision(t *testing.T) {
	needServers(t)
	ctx := context.Background()
	store := NewClaimStore(env.rdb)
	tenant := newTenant("claims-time")
	tokyo := time.FixedZone("JST", 9*3600)
	received := time.Date(2026, 3, 31, 23, 59, 59, 987654321, tokyo)
	own := schemas.Claim{Partition: 2, Offset: 7, PayloadHash: 42, ReceivedAt: received}
	got, err := store.Claim(ctx, []ClaimRequest{req(tenant, "x", own)})
	if err != nil {
		t.Fatal(err)
	}
	want := received.Truncate(time.Second)
	if !got[0].ReceivedAt.Equal(want) {
		t.Errorf("own claim returned with received time %v, want the stored %v", got[0].ReceivedAt, want)
	}
	got, err = store.Claim(ctx, []ClaimRequest{req(tenant, "x", schemas.Claim{Partition: 0, Offset: 1, ReceivedAt: received})})
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].ReceivedAt.Equal(want) || got[0].ReceivedAt.Location() != time.UTC {
		t.Errorf("received time %v, want %v in UTC", got[0].ReceivedAt, want)
	}
}

// A claim counts for its retention, measured from the receive time of the
// record that asks: one second inside, it is found; one second outside, the
// id is claimed afresh by the asking record (not a duplicate).
func TestClaimStoreRetention(t *testing.T) { eachRedis(t, testClaimStoreRetention) }

func testClaimStoreRetention(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	store := NewClaimStore(rdb)
	tenant := newTenant("claims-retention")
	const ret = 3 * time.Hour
	t0 := time.Now().Truncate(time.Second)
	at := func(p int, o int64, d time.Duration) ClaimRequest {
		return ClaimRequest{Tenant: tenant, ID: "x", Retention: ret,
			Claim: schemas.Claim{Partition: p, Offset: o, PayloadHash: 1, ReceivedAt: t0.Add(d)}}
	}
	first, edge, outside, after := at(0, 1, 0), at(1, 2, ret), at(2, 3, ret+time.Second), at(0, 4, ret+time.Hour)
	steps := []struct {
		name string
		req  ClaimRequest
		want schemas.Claim
	}{
		{"first", first, first.Claim},
		{"exactly the retention later: still a duplicate", edge, first.Claim},
		{"a second past the retention: claimed afresh", outside, outside.Claim},
		{"later repeats find the new claim", after, outside.Claim},
		{"the first record redelivered now finds the new claim", first, outside.Claim},
	}
	for _, st := range steps {
		got, err := store.Claim(ctx, []ClaimRequest{st.req})
		if err != nil {
			t.Fatal(err)
		}
		if !sameClaim(got[0], st.want) {
			t.Errorf("%s: got %+v, want %+v", st.name, got[0], st.want)
		}
	}
}

// After SCRIPT FLUSH (as after a Redis restart) the store loads its script
// again by itself.
func TestClaimStoreScriptFlushed(t *testing.T) { eachRedis(t, testClaimStoreScriptFlushed) }

func testClaimStoreScriptFlushed(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	store := NewClaimStore(rdb)
	tenant := newTenant("claims-noscript")
	a := claim(0, 1, 1, 1000)
	if _, err := store.Claim(ctx, []ClaimRequest{req(tenant, "x", a)}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil { // on every master of a cluster
		t.Fatal(err)
	}
	got, err := store.Claim(ctx, []ClaimRequest{req(tenant, "x", claim(1, 2, 2, 2000)), req(tenant, "y", a)})
	if err != nil {
		t.Fatal(err)
	}
	if !sameClaim(got[0], a) || !sameClaim(got[1], a) {
		t.Errorf("after SCRIPT FLUSH: %+v, want the first claim for x and its own for y", got)
	}
}

// A batch larger than one script call (claimChunk) is still one round trip
// whose calls see each other's claims in order.
func TestClaimStoreLargeBatch(t *testing.T) { eachRedis(t, testClaimStoreLargeBatch) }

func testClaimStoreLargeBatch(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	store := NewClaimStore(rdb)
	tenant := newTenant("claims-large")
	n := 2*claimChunk + 10
	reqs := make([]ClaimRequest, n)
	for i := range reqs {
		id := fmt.Sprint(i)
		if i >= claimChunk+5 { // repeats of the first chunk's ids, from the later chunks
			id = fmt.Sprint(i - claimChunk - 5)
		}
		reqs[i] = req(tenant, id, claim(0, int64(i), 1, 1000))
	}
	got, err := store.Claim(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		wantOffset := int64(i)
		if i >= claimChunk+5 {
			wantOffset = int64(i - claimChunk - 5)
		}
		if got[i].Offset != wantOffset {
			t.Fatalf("request %d: claim of offset %d, want %d", i, got[i].Offset, wantOffset)
		}
	}
}

// Claims that the packed layout cannot hold are refused, not truncated.
func TestEncodeClaimRange(t *testing.T) {
	ok := time.Unix(1, 0)
	for _, c := range []schemas.Claim{
		{Partition: -1, ReceivedAt: ok},
		{Partition: 1 << 16, ReceivedAt: ok},
		{Offset: -1, ReceivedAt: ok},
		{Offset: 1 << 48, ReceivedAt: ok},
		{PayloadHash: 1 << 32, ReceivedAt: ok},
		{ReceivedAt: time.Unix(-1, 0)},
		{ReceivedAt: time.Unix(1<<32, 0)},
	} {
		if _, err := encodeClaim(c); err == nil {
			t.Errorf("encodeClaim(%+v) accepted", c)
		}
	}
	c := schemas.Claim{Partition: 0xffff, Offset: 1<<48 - 1, PayloadHash: 0xffffffff, ReceivedAt: time.Unix(0xffffffff, 0).UTC()}
	packed, err := encodeClaim(c)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := decodeClaim(string(packed[:])); err != nil || !sameClaim(back, c) {
		t.Errorf("round trip %+v → %+v, %v", c, back, err)
	}
	if _, err := decodeClaim(strings.Repeat("x", claimLen-1)); err == nil {
		t.Error("decodeClaim accepted a short value")
	}
	if _, err := NewClaimStore(nil).Claim(context.Background(), []ClaimRequest{{Tenant: "t", ID: "x", Claim: claim(0, 0, 0, 1)}}); err == nil {
		t.Error("a claim without retention was accepted")
	}
}

// On a Redis Cluster the claims spread over every master, each bucket in the
// slot of its group's hash tag, and a batch over many groups is still
// answered in order, request by request.
func TestClaimStoreClusterSpread(t *testing.T) {
	needServers(t)
	ctx := context.Background()
	store := NewClaimStore(env.crdb)
	tenant := newTenant("claims-spread")
	const n = 3000
	reqs := make([]ClaimRequest, 0, 2*n)
	for i := range n {
		reqs = append(reqs, req(tenant, fmt.Sprint(i), claim(0, int64(i), 1, 1000)))
	}
	for i := range n { // every id again, later in the same batch
		reqs = append(reqs, req(tenant, fmt.Sprint(i), claim(1, int64(n+i), 2, 2000)))
	}
	got, err := store.Claim(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		if want := int64(i % n); c.Partition != 0 || c.Offset != want {
			t.Fatalf("request %d: claim %+v, want partition 0 offset %d", i, c, want)
		}
	}
	perMaster := map[string]int{}
	for i := range n {
		loc := locate(tenant, fmt.Sprint(i))
		tag := fmt.Sprintf("%02x", loc.group)
		if !strings.Contains(loc.key, "{"+tag+"}") {
			t.Fatalf("bucket %q lacks its group's hash tag {%s}", loc.key, tag)
		}
		slot, err := env.crdb.ClusterKeySlot(ctx, loc.key).Result()
		if err != nil {
			t.Fatal(err)
		}
		tagSlot, err := env.crdb.ClusterKeySlot(ctx, tag).Result()
		if err != nil {
			t.Fatal(err)
		}
		if slot != tagSlot {
			t.Fatalf("bucket %q in slot %d, its tag %q in %d", loc.key, slot, tag, tagSlot)
		}
		master := nodeFor(t, env.crdb, loc.key).(*redis.Client)
		ok, err := master.HExists(ctx, loc.key, loc.field).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("claim of %d not on the master %s that owns its slot", i, master.Options().Addr)
		}
		perMaster[master.Options().Addr]++
	}
	if len(perMaster) != clusterMasters {
		t.Fatalf("claims on %d masters, want all %d: %v", len(perMaster), clusterMasters, perMaster)
	}
	for addr, k := range perMaster {
		if k < n/clusterMasters/2 {
			t.Errorf("master %s holds %d of %d claims: not spread (%v)", addr, k, n, perMaster)
		}
	}
}
