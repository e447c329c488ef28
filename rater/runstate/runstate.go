// Package runstate persists the rater's running period state in Redis so
// that incremental rating (line = cost(after) − cost(before)) survives a
// crash and a redelivery exactly.
//
// Every entry records, next to the state bytes, the position in
// usage.accepted (partition, offset) of the last record applied to it. The
// rater handles a batch in this order:
//
//  1. Load the entries its records touch (one MGET).
//  2. Skip every record whose offset is at or below its entry's applied
//     offset: its effect is in the state and its lines were written before
//     the state was (step 4 comes after step 3).
//  3. Write the lines to Kafka, acknowledged.
//  4. Save every changed entry in one MULTI/EXEC, all or nothing.
//  5. Commit the consumer offsets.
//
// A crash before 4 redelivers records against the old state and produces
// the same lines with the same ids, which replace themselves downstream; a
// crash between 4 and 5 redelivers records that step 2 skips. Either way
// no step is lost or taken twice. All of one customer's records share a
// partition (the Kafka key is tenant/customer), so per-entry offsets only
// grow.
package runstate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"
)

// Entry is one running state with the position of the last record applied.
type Entry struct {
	Partition int
	Offset    int64 // -1: nothing applied yet
	Data      []byte
}

// Applied reports whether the record at (partition, offset) is already part
// of the entry.
func (e Entry) Applied(partition int, offset int64) bool {
	return e.Offset >= 0 && e.Partition == partition && offset <= e.Offset
}

// Store keeps entries in Redis under "rs:{tenant}:" + a 128-bit hash of the
// caller's key, each with a time to live so that the state of long-closed
// periods goes away.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns a store whose entries expire ttl after their last save. The
// ttl must outlast the latest a record may arrive for a period (the dedupe
// window plus a billing period).
func New(rdb redis.UniversalClient, ttl time.Duration) *Store {
	return &Store{rdb: rdb, ttl: ttl}
}

// Key names an entry: the tenant and the rater's own key for the state
// (customer, contract, fee, split values, period…).
type Key struct {
	Tenant string
	State  string
}

func (k Key) redisKey() string {
	sum := xxh3.HashString128(k.State).Bytes()
	return "rs:" + k.Tenant + ":" + string(sum[:])
}

const headerLen = 2 + 8

// Load returns the entries for keys in one round trip. A missing key gives
// an entry with Offset -1 and no data.
func (s *Store) Load(ctx context.Context, keys []Key) ([]Entry, error) {
	out := make([]Entry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rk := make([]string, len(keys))
	for i, k := range keys {
		rk[i] = k.redisKey()
	}
	vals, err := s.rdb.MGet(ctx, rk...).Result()
	if err != nil {
		return nil, fmt.Errorf("load running state: %w", err)
	}
	for i, v := range vals {
		out[i] = Entry{Offset: -1}
		if v == nil {
			continue
		}
		str, ok := v.(string)
		if !ok || len(str) < headerLen {
			return nil, fmt.Errorf("load running state: malformed entry for %s/%q", keys[i].Tenant, keys[i].State)
		}
		b := []byte(str)
		out[i] = Entry{
			Partition: int(binary.BigEndian.Uint16(b)),
			Offset:    int64(binary.BigEndian.Uint64(b[2:])),
			Data:      b[headerLen:],
		}
	}
	return out, nil
}

// Save writes every entry in one MULTI/EXEC: all of them or none.
func (s *Store) Save(ctx context.Context, keys []Key, entries []Entry) error {
	if len(keys) != len(entries) {
		return errors.New("save running state: keys and entries differ in number")
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range entries {
			if e.Partition < 0 || e.Partition > 0xffff || e.Offset < 0 {
				return fmt.Errorf("save running state: position %d/%d out of range", e.Partition, e.Offset)
			}
			b := make([]byte, headerLen+len(e.Data))
			binary.BigEndian.PutUint16(b, uint16(e.Partition))
			binary.BigEndian.PutUint64(b[2:], uint64(e.Offset))
			copy(b[headerLen:], e.Data)
			p.Set(ctx, keys[i].redisKey(), b, s.ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save running state: %w", err)
	}
	return nil
}
