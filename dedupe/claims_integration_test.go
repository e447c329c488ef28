package dedupe

import (
	"context"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
)

func claim(p int, o int64, hash uint64, receivedMS int64) schemas.Claim {
	return schemas.Claim{Partition: p, Offset: o, PayloadHash: hash, ReceivedAt: time.UnixMilli(receivedMS).UTC()}
}

func sameClaim(a, b schemas.Claim) bool {
	return a.Partition == b.Partition && a.Offset == b.Offset && a.PayloadHash == b.PayloadHash && a.ReceivedAt.Equal(b.ReceivedAt)
}

// ClaimStore.Claim against a real Redis: each step is one pipelined call and
// sees the claims of the steps before it.
func TestClaimStoreClaim(t *testing.T) {
	needServers(t)
	ctx := context.Background()
	store := NewClaimStore(env.rdb, time.Hour)
	ta, tb := newTenant("claims-a"), newTenant("claims-b")

	// Hashes above MaxInt64 and received times with milliseconds check that
	// the encoding round-trips every field.
	first := claim(0, 10, 0xfedcba9876543210, 1767225600123)
	later := claim(1, 20, 0x0123456789abcdef, 1767225661456)
	steps := []struct {
		name string
		reqs []ClaimRequest
		want []schemas.Claim
	}{
		{"first claim wins",
			[]ClaimRequest{{ta, "e1", first}},
			[]schemas.Claim{first}},
		{"a later record from another partition gets the first claim back",
			[]ClaimRequest{{ta, "e1", later}},
			[]schemas.Claim{first}},
		{"another offset of the same partition gets the first claim back",
			[]ClaimRequest{{ta, "e1", claim(0, 11, 7, 1767225700000)}},
			[]schemas.Claim{first}},
		{"the claiming record redelivered gets its own claim back",
			[]ClaimRequest{{ta, "e1", first}},
			[]schemas.Claim{first}},
		{"a redelivery whose received time or hash changed still gets the stored claim",
			[]ClaimRequest{{ta, "e1", claim(0, 10, 1, 1)}},
			[]schemas.Claim{first}},
		{"the same id under another tenant is independent",
			[]ClaimRequest{{tb, "e1", later}},
			[]schemas.Claim{later}},
		{"other ids are independent",
			[]ClaimRequest{{ta, "e2", later}, {ta, "E1", claim(2, 5, 5, 5)}},
			[]schemas.Claim{later, claim(2, 5, 5, 5)}},
		{"duplicates inside one call resolve in order",
			[]ClaimRequest{
				{ta, "p1", claim(0, 100, 1, 1000)},
				{ta, "p1", claim(1, 101, 2, 2000)},
				{ta, "p2", claim(2, 102, 3, 3000)},
				{ta, "p1", claim(2, 103, 1, 4000)},
				{ta, "p2", claim(2, 102, 3, 3000)}, // redelivered within the call
				{tb, "p1", claim(1, 104, 9, 5000)},
			},
			[]schemas.Claim{
				claim(0, 100, 1, 1000),
				claim(0, 100, 1, 1000),
				claim(2, 102, 3, 3000),
				claim(0, 100, 1, 1000),
				claim(2, 102, 3, 3000),
				claim(1, 104, 9, 5000),
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

	// Claims are kept for the window: the TTL of the claim key.
	for _, k := range []struct{ tenant, id string }{{ta, "e1"}, {tb, "e1"}, {ta, "p1"}} {
		ttl, err := env.rdb.PTTL(ctx, claimKey(k.tenant, k.id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= time.Hour-time.Minute || ttl > time.Hour {
			t.Errorf("claim %s/%s: TTL %v, want the window (1h)", k.tenant, k.id, ttl)
		}
	}
	// One key per (tenant, id), nothing else.
	n := 0
	iter := env.rdb.Scan(ctx, 0, "dd:"+ta+":*", 100).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if want := 5; n != want { // e1, e2, E1, p1, p2
		t.Errorf("%d claim keys for tenant %s, want %d", n, ta, want)
	}
}

// The received time is kept with millisecond precision: a claim reads back
// as the record's time truncated to the millisecond, in UTC.
func TestClaimStoreReceivedTimePrecision(t *testing.T) {
	needServers(t)
	ctx := context.Background()
	store := NewClaimStore(env.rdb, time.Hour)
	tenant := newTenant("claims-time")
	tokyo := time.FixedZone("JST", 9*3600)
	received := time.Date(2026, 3, 31, 23, 59, 59, 987654321, tokyo)
	own := schemas.Claim{Partition: 2, Offset: 7, PayloadHash: 42, ReceivedAt: received}
	if _, err := store.Claim(ctx, []ClaimRequest{{tenant, "x", own}}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Claim(ctx, []ClaimRequest{{tenant, "x", schemas.Claim{Partition: 0, Offset: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := received.Truncate(time.Millisecond); !got[0].ReceivedAt.Equal(want) {
		t.Errorf("received time %v, want %v", got[0].ReceivedAt, want)
	}
	if got[0].ReceivedAt.Location() != time.UTC {
		t.Errorf("received time in %v, want UTC", got[0].ReceivedAt.Location())
	}
}

// A claim expires after the window; the id can then be claimed afresh.
func TestClaimStoreWindowExpiry(t *testing.T) {
	needServers(t)
	ctx := context.Background()
	const window = 300 * time.Millisecond
	store := NewClaimStore(env.rdb, window)
	tenant := newTenant("claims-expiry")
	a, b := claim(0, 1, 1, 1000), claim(1, 2, 2, 2000)
	if got, err := store.Claim(ctx, []ClaimRequest{{tenant, "x", a}}); err != nil || !sameClaim(got[0], a) {
		t.Fatalf("first claim = %+v, %v", got, err)
	}
	ttl, err := env.rdb.PTTL(ctx, claimKey(tenant, "x")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > window {
		t.Errorf("TTL %v, want (0, %v]", ttl, window)
	}
	if got, err := store.Claim(ctx, []ClaimRequest{{tenant, "x", b}}); err != nil || !sameClaim(got[0], a) {
		t.Fatalf("claim within the window = %+v, %v; want the first claim", got, err)
	}
	// The losing claim did not extend the window.
	if ttl2, _ := env.rdb.PTTL(ctx, claimKey(tenant, "x")).Result(); ttl2 > ttl {
		t.Errorf("TTL grew from %v to %v on a losing claim", ttl, ttl2)
	}
	time.Sleep(window + 100*time.Millisecond)
	if got, err := store.Claim(ctx, []ClaimRequest{{tenant, "x", b}}); err != nil || !sameClaim(got[0], b) {
		t.Fatalf("claim after the window = %+v, %v; want its own claim", got, err)
	}
}
