package dedupe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"
)

// ClaimStore remembers which record claimed each (tenant, id).
type ClaimStore struct {
	rdb    redis.UniversalClient
	window time.Duration
}

// NewClaimStore returns a store whose claims expire after window.
func NewClaimStore(rdb redis.UniversalClient, window time.Duration) *ClaimStore {
	return &ClaimStore{rdb: rdb, window: window}
}

// claimKey is "dd:{tenant}:" followed by the 128-bit hash of the event id:
// tenant-scoped, fixed length whatever the id, and binary-safe.
func claimKey(tenant, id string) string {
	sum := xxh3.HashString128(id).Bytes()
	return "dd:" + tenant + ":" + string(sum[:])
}

// encodeClaim renders a claim as "partition:offset:payloadhash:receivedms".
func encodeClaim(c schemas.Claim) string {
	var b strings.Builder
	b.Grow(48)
	b.WriteString(strconv.Itoa(c.Partition))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(c.Offset, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(c.PayloadHash, 16))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(c.ReceivedAt.UnixMilli(), 10))
	return b.String()
}

func decodeClaim(s string) (schemas.Claim, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return schemas.Claim{}, fmt.Errorf("malformed claim %q", s)
	}
	p, err1 := strconv.Atoi(parts[0])
	o, err2 := strconv.ParseInt(parts[1], 10, 64)
	h, err3 := strconv.ParseUint(parts[2], 16, 64)
	ms, err4 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return schemas.Claim{}, fmt.Errorf("malformed claim %q", s)
	}
	return schemas.Claim{Partition: p, Offset: o, PayloadHash: h, ReceivedAt: time.UnixMilli(ms).UTC()}, nil
}

// ClaimRequest asks to claim (Tenant, ID) for the record described by Claim.
type ClaimRequest struct {
	Tenant, ID string
	Claim      schemas.Claim
}

// Claim tries every request in one pipelined round trip, in order. For each it
// returns the claim now on record: the request's own claim when it won (or
// had already won before a redelivery), or the earlier record's claim.
func (s *ClaimStore) Claim(ctx context.Context, reqs []ClaimRequest) ([]schemas.Claim, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(reqs))
	for i, r := range reqs {
		cmds[i] = pipe.SetArgs(ctx, claimKey(r.Tenant, r.ID), encodeClaim(r.Claim),
			redis.SetArgs{Mode: "NX", Get: true, TTL: s.window})
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redis claim pipeline: %w", err)
	}
	out := make([]schemas.Claim, len(reqs))
	for i, cmd := range cmds {
		prev, err := cmd.Result()
		switch {
		case err == redis.Nil:
			out[i] = reqs[i].Claim // claimed now
		case err != nil:
			return nil, fmt.Errorf("redis claim: %w", err)
		default:
			c, err := decodeClaim(prev)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
	}
	return out, nil
}

// Ping checks that Redis answers.
func (s *ClaimStore) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }
