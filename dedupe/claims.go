package dedupe

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"
)

// The compact claim layout (docs/ARCHITECTURE.md, "Redis keys").
//
// An event id is fingerprinted with xxh3-128. Its first BucketBits bits pick
// one of the tenant's 2^19 bucket hashes: the first GroupBits bits name the
// bucket's group, written as a Redis Cluster hash tag, and the next 11 bits
// the bucket inside it, so a bucket key is "dd:" + tenant + ":{gg}" + 2 bytes.
// The next 8 bytes of the fingerprint are the field inside the bucket; the
// value is the 16-byte packed claim. Redis keeps a small hash as a listpack
// (a flat array, no per-entry pointers): about 31 bytes per claim plus the
// bucket key's own ~80–110 bytes shared by its claims. At 10 million
// remembered ids of a tenant a bucket holds ~19 claims (measured: ~36 bytes
// per id, docs/BENCHMARKS.md). A listpack is searched linearly, so buckets
// are kept that small for speed; Redis's default hash-max-listpack-entries
// (128) keeps them compact up to ~45 million ids per tenant and window
// (raise it to 512 for more).
//
// The hash tag is what lets the claims spread over a Redis Cluster: Redis
// places a key by its tag alone, so all buckets of one group, of every
// tenant, live in the same slot, and one script call may claim any number
// of them. The 256 groups spread over the cluster's slots, and so over its
// masters, evenly (about 256/n groups each for n masters).
const (
	// BucketBits is how many bits of the fingerprint choose the bucket, and
	// GroupBits how many of those choose its group (its cluster slot).
	// Changing either makes every claim unreachable (as if Redis lost its
	// data).
	BucketBits = 19
	GroupBits  = 8
	fieldLen   = 8
	claimLen   = 16
	recLen     = fieldLen + claimLen + 4 // one request in the script's argument
	keyPrefix  = "dd:"
	// claimChunk is how many claims one script call makes at most. A batch
	// is sent as several calls in one pipeline, so Redis serves other
	// clients between them instead of being blocked by a whole batch.
	claimChunk = 1000
)

// claimScript claims each request's field in its bucket, in order. KEYS[i]
// is request i's bucket; ARGV[1] packs, per request, 28 bytes: the 8-byte
// field, the 16-byte claim and the retention in seconds (u32). A claim on
// record that is older than the retention, measured from the requesting
// record's own receive time, no longer counts and is replaced.
//
// The answer is one string holding, for each request that did not claim its
// id, its index (u32, from 1) and the 16-byte claim on record; every other
// request claimed its id now. One call costs Redis one HSETNX per request
// (and an HGET for each repeat): the common case of a new id does nothing
// else, and the reply is empty. Expiry is the sweeper's job (sweep.go).
const claimScript = `
local recs, sub, unpack4, out = ARGV[1], string.sub, struct.unpack, {}
for i = 1, #KEYS do
  local o = (i - 1) * 28
  local f, c = sub(recs, o + 1, o + 8), sub(recs, o + 9, o + 24)
  if redis.call('HSETNX', KEYS[i], f, c) == 0 then
    local old = redis.call('HGET', KEYS[i], f)
    if #old == 16 and unpack4('>I4', old, 13) + unpack4('>I4', recs, o + 25) >= unpack4('>I4', c, 13) then
      out[#out + 1] = struct.pack('>I4', i) .. old
    else
      redis.call('HSET', KEYS[i], f, c)
    end
  end
end
return table.concat(out)
`

var script = redis.NewScript(claimScript)

// ClaimStore remembers which record claimed each (tenant, id), compactly.
type ClaimStore struct {
	rdb redis.UniversalClient
	// slotted is set for a Redis Cluster: one script call may then only
	// claim buckets of one group (one hash tag, so one slot).
	slotted bool
}

// NewClaimStore returns a store over rdb: a single Redis (*redis.Client) or a
// Redis Cluster (*redis.ClusterClient), whose masters then share the claims
// by bucket group and serve a batch's claims in parallel.
func NewClaimStore(rdb redis.UniversalClient) *ClaimStore {
	_, cluster := rdb.(*redis.ClusterClient)
	return &ClaimStore{rdb: rdb, slotted: cluster}
}

// location is where a (tenant, id) claim lives: its bucket key, the bucket's
// group and the field.
type location struct {
	key   string
	group uint8
	field string
}

// locate fingerprints id with xxh3-128 and returns its bucket and field.
func locate(tenant, id string) location {
	sum := xxh3.HashString128(id).Bytes()
	const hex = "0123456789abcdef"
	top := (uint32(sum[0])<<16 | uint32(sum[1])<<8 | uint32(sum[2])) >> (24 - BucketBits) // the first BucketBits bits
	g := uint8(top >> (BucketBits - GroupBits))
	rest := uint16(top & (1<<(BucketBits-GroupBits) - 1))
	key := make([]byte, 0, len(keyPrefix)+len(tenant)+7)
	key = append(key, keyPrefix...)
	key = append(key, tenant...)
	key = append(key, ':', '{', hex[g>>4], hex[g&0xf], '}', byte(rest>>8), byte(rest))
	return location{key: string(key), group: g, field: string(sum[3 : 3+fieldLen])}
}

// bucketTenant returns the tenant and group tag of a bucket key
// "dd:" + tenant + ":{gg}" + 2 bytes.
func bucketTenant(key string) (tenant, tag string, ok bool) {
	const suffix = 7 // ":{gg}" and the bucket
	n := len(key)
	if n < len(keyPrefix)+1+suffix || key[:len(keyPrefix)] != keyPrefix || key[n-suffix:n-suffix+2] != ":{" || key[n-3] != '}' {
		return "", "", false
	}
	return key[len(keyPrefix) : n-suffix], key[n-5 : n-3], true
}

// Fingerprint is the 32-bit payload fingerprint a claim keeps: the top half
// of schemas.PayloadHash. Compare payloads only by fingerprints computed the
// same way.
func Fingerprint(e *schemas.UsageEvent) uint64 { return fingerprint(schemas.PayloadHash(e)) }

// fingerprint is the claim's fingerprint of a schemas.PayloadHash.
func fingerprint(payloadHash uint64) uint64 { return payloadHash >> 32 }

// encodeClaim packs a claim into 16 bytes: partition u16, offset u48,
// payload fingerprint u32, receive time in unix seconds u32, big-endian.
func encodeClaim(c schemas.Claim) ([claimLen]byte, error) {
	var b [claimLen]byte
	secs := c.ReceivedAt.Unix()
	switch {
	case c.Partition < 0 || c.Partition > 0xffff:
		return b, fmt.Errorf("claim: partition %d does not fit 16 bits", c.Partition)
	case c.Offset < 0 || c.Offset >= 1<<48:
		return b, fmt.Errorf("claim: offset %d does not fit 48 bits", c.Offset)
	case c.PayloadHash > 0xffffffff:
		return b, fmt.Errorf("claim: payload fingerprint %x is wider than 32 bits", c.PayloadHash)
	case secs < 0 || secs > 0xffffffff:
		return b, fmt.Errorf("claim: receive time %v out of range", c.ReceivedAt)
	}
	binary.BigEndian.PutUint64(b[0:8], uint64(c.Partition)<<48|uint64(c.Offset))
	binary.BigEndian.PutUint32(b[8:12], uint32(c.PayloadHash))
	binary.BigEndian.PutUint32(b[12:16], uint32(secs))
	return b, nil
}

func decodeClaim(s string) (schemas.Claim, error) {
	if len(s) != claimLen {
		return schemas.Claim{}, fmt.Errorf("malformed claim of %d bytes", len(s))
	}
	b := []byte(s)
	po := binary.BigEndian.Uint64(b[0:8])
	return schemas.Claim{
		Partition:   int(po >> 48),
		Offset:      int64(po & (1<<48 - 1)),
		PayloadHash: uint64(binary.BigEndian.Uint32(b[8:12])),
		ReceivedAt:  time.Unix(int64(binary.BigEndian.Uint32(b[12:16])), 0).UTC(),
	}, nil
}

// ClaimRequest asks to claim (Tenant, ID) for the record described by Claim,
// remembered for Retention after the record's receive time. Claim.PayloadHash
// must be a Fingerprint; Claim.ReceivedAt is kept to the second.
type ClaimRequest struct {
	Tenant, ID string
	Claim      schemas.Claim
	Retention  time.Duration
}

// Claim tries every request in one pipelined round trip, in order. For each it
// returns the claim now on record, as stored (receive time to the second):
// the request's own claim when it won (or had already won before a
// redelivery), or the earlier record's claim. A claim older than the
// request's retention, counted back from the request's receive time, is
// replaced rather than returned.
func (s *ClaimStore) Claim(ctx context.Context, reqs []ClaimRequest) ([]schemas.Claim, error) {
	out := make([]schemas.Claim, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	locs := make([]location, len(reqs))
	packs := make([][claimLen]byte, len(reqs))
	for i, r := range reqs {
		if secs := int64(r.Retention / time.Second); secs < 1 || secs > math.MaxUint32 {
			return nil, fmt.Errorf("claim %s/%s: retention %v out of range", r.Tenant, r.ID, r.Retention)
		}
		packed, err := encodeClaim(r.Claim)
		if err != nil {
			return nil, fmt.Errorf("claim %s/%s: %w", r.Tenant, r.ID, err)
		}
		locs[i], packs[i] = locate(r.Tenant, r.ID), packed
		out[i] = storedForm(packed) // the stored form of this request's own claim
	}
	// One script call per chunk; a chunk keeps its requests in batch order,
	// and every request on one id (one bucket) is in the same chunk.
	type chunk struct {
		idx  []int // the chunk's requests, as indexes into reqs
		keys []string
		recs []byte
	}
	var chunks []chunk
	add := func(idx []int) {
		for len(idx) > 0 {
			part := idx[:min(claimChunk, len(idx))]
			idx = idx[len(part):]
			c := chunk{idx: part, keys: make([]string, len(part)), recs: make([]byte, 0, recLen*len(part))}
			for j, i := range part {
				c.keys[j] = locs[i].key
				c.recs = append(c.recs, locs[i].field...)
				c.recs = append(c.recs, packs[i][:]...)
				c.recs = binary.BigEndian.AppendUint32(c.recs, uint32(reqs[i].Retention/time.Second))
			}
			chunks = append(chunks, c)
		}
	}
	order := make([]int, len(reqs))
	if !s.slotted {
		for i := range order {
			order[i] = i
		}
		add(order)
	} else {
		// A cluster serves a script call's keys only from one slot: sort
		// the requests by group (a counting sort, stable) and call per group.
		var starts [1<<GroupBits + 1]int
		for _, l := range locs {
			starts[int(l.group)+1]++
		}
		for g := 1; g < len(starts); g++ {
			starts[g] += starts[g-1]
		}
		next := starts
		for i, l := range locs {
			order[next[l.group]] = i
			next[l.group]++
		}
		for g := 0; g < 1<<GroupBits; g++ {
			add(order[starts[g]:starts[g+1]])
		}
	}
	run := func() ([]*redis.Cmd, error) {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(chunks))
		for i, c := range chunks {
			cmds[i] = script.EvalSha(ctx, pipe, c.keys, c.recs)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && isNoScript(err) {
		// Redis restarted or its script cache was flushed: load the script
		// and run again. Calls that did run already hold their claims, which
		// a repeat recognises as their own.
		if lerr := script.Load(ctx, s.rdb).Err(); lerr != nil {
			return nil, fmt.Errorf("redis claim: load script: %w", lerr)
		}
		cmds, err = run()
	}
	if err != nil {
		return nil, fmt.Errorf("redis claim: %w", err)
	}
	for ci, cmd := range cmds {
		lost, err := cmd.Text()
		if err != nil {
			return nil, fmt.Errorf("redis claim: %w", err)
		}
		if len(lost)%(4+claimLen) != 0 {
			return nil, fmt.Errorf("redis claim: malformed answer of %d bytes", len(lost))
		}
		n := len(chunks[ci].idx)
		for ; len(lost) > 0; lost = lost[4+claimLen:] {
			i := int(binary.BigEndian.Uint32([]byte(lost[:4])))
			if i < 1 || i > n {
				return nil, fmt.Errorf("redis claim: answer names request %d of %d", i, n)
			}
			c, err := decodeClaim(lost[4 : 4+claimLen])
			if err != nil {
				return nil, fmt.Errorf("redis claim: %w", err)
			}
			out[chunks[ci].idx[i-1]] = c
		}
	}
	return out, nil
}

func storedForm(packed [claimLen]byte) schemas.Claim {
	c, err := decodeClaim(string(packed[:]))
	if err != nil {
		panic(err) // a packed claim is always claimLen bytes
	}
	return c
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// Ping checks that Redis answers: every master, for a cluster.
func (s *ClaimStore) Ping(ctx context.Context) error {
	return eachServer(ctx, s.rdb, func(ctx context.Context, server redis.UniversalClient) error {
		return server.Ping(ctx).Err()
	})
}

// eachServer calls fn for rdb itself, or for every master of a Redis
// Cluster in parallel; an error names the master it came from.
func eachServer(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, redis.UniversalClient) error) error {
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return fn(ctx, rdb)
	}
	return cluster.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
		if err := fn(ctx, master); err != nil {
			return fmt.Errorf("master %s: %w", master.Options().Addr, err)
		}
		return nil
	})
}
