// Package runstate persists the rater's running period state in Redis so
// that incremental rating (line = cost(after) − cost(before)) survives a
// crash, a redelivery and a rebalance exactly.
//
// Every entry records, next to the state bytes, which records it already
// holds, by a position every copy of a record shares:
//
//   - a usage record by its usage.raw position (partition, offset), which
//     dedupe names in the headers of every record it passes on
//     (schemas.RawPositionHeaders). Dedupe may pass a record on more than
//     once (it handles a batch again after a rebalance or a crash between
//     its write and its commit), each time at a new usage.accepted offset
//     but always with the raw position ingest gave it once. All of one
//     customer's records share one usage.raw partition and reach
//     usage.accepted in that partition's order (a copy only ever comes after
//     the record's first pass), so per entry the raw offsets of new records
//     only grow: a record is applied when its raw offset is at or below the
//     entry's (AppliedRaw).
//   - a record passed on before dedupe named raw positions, and a re-rate
//     request, by its usage.accepted position (Applied): the rater's own
//     redelivery is recognised, a copy made by dedupe is not (as before).
//     The accepted position is that of the last usage record or re-rate
//     applied, so it, too, only grows.
//   - a correction by nothing here: the rater keeps the last generation
//     applied per corrected record in entries of its own, saved in the same
//     write as the states, and a correction moves no position.
//
// The rater handles a batch in this order:
//
//  1. Load the entries its records touch (one MGET), each with its version.
//  2. Skip every record an entry already holds: its effect is in the state
//     and its lines were written before the state was (step 4 comes after
//     step 3).
//  3. Write the lines to Kafka, acknowledged.
//  4. Save every changed entry in one script call, all or nothing, and only
//     if no entry was saved by anyone since step 1 (each entry's version is
//     still the one loaded; the save writes version + 1). Otherwise Save
//     fails with ErrFenced and writes nothing.
//  5. Commit the consumer offsets.
//
// A crash before 4 redelivers records against the old state and produces
// the same lines with the same ids, which replace themselves downstream; a
// crash between 4 and 5 redelivers records that step 2 skips. A rater still
// finishing a batch after its partitions moved to another member cannot
// roll that member's newer state back: its save is fenced, its batch fails
// and is handed again (internal/stream), it reloads, and step 2 skips what
// the other member applied.
//
// The entries live on one Redis (not a cluster): a save is one script over
// keys of any tenant and hash slot.
package runstate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"
)

// ErrFenced is wrapped by Save's error when an entry was saved by another
// writer after the caller loaded it: nothing was written, and the caller
// must load again and redo its work.
var ErrFenced = errors.New("running state was saved by another writer since it was loaded")

// Entry is one running state with the positions of the last record applied
// and the version it was loaded at.
type Entry struct {
	// Partition and Offset are the usage.accepted position of the last
	// usage record or re-rate request applied (-1: none).
	Partition int
	Offset    int64
	// RawPartition and RawOffset are the usage.raw position of the last
	// usage record applied that named one (-1: none).
	RawPartition int
	RawOffset    int64
	// Version counts the entry's saves (0: never saved, or saved before
	// entries had versions). Save writes only over the version loaded.
	Version uint64
	Data    []byte
}

// Applied reports whether the message at usage.accepted position
// (partition, offset) is already part of the entry. It is the check for a
// record without a raw position and for a re-rate request.
func (e Entry) Applied(partition int, offset int64) bool {
	return e.Offset >= 0 && e.Partition == partition && offset <= e.Offset
}

// AppliedRaw reports whether the usage record at usage.raw position
// (partition, offset) is already part of the entry, whichever copy of it
// this is.
func (e Entry) AppliedRaw(partition int, offset int64) bool {
	return e.RawOffset >= 0 && e.RawPartition == partition && offset <= e.RawOffset
}

// Store keeps entries in Redis under "rs:{tenant}:" + a 128-bit hash of the
// caller's key, each with a time to live so that the state of long-closed
// periods goes away.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
	// replicas and replicaTimeout: WithReplicaWait.
	replicas       int
	replicaTimeout time.Duration
}

// WithReplicaWait makes every Save wait (Redis WAIT, in the save's own
// pipeline) until n replicas have the save, at most timeout, and fail
// when fewer did. On a replicated Redis with Sentinel failover that is what
// makes an acknowledged save survive the primary's death: a failover
// promotes a replica, and a save it had not received would be gone. A save
// that failed this way may still be on the primary; the batch fails and is
// handed again, and Load then shows either the save (its records are
// skipped) or the state before it (they are applied again, with the same
// line ids). n = 0 (the default) waits for nothing.
func (s *Store) WithReplicaWait(n int, timeout time.Duration) *Store {
	s.replicas, s.replicaTimeout = n, timeout
	return s
}

// New returns a store whose entries expire ttl after their last save. The
// ttl must outlast the latest a record may arrive for a period (the dedupe
// window plus a billing period). rdb must be a single Redis (or a failover
// client), not a cluster: a save is one script over all its keys.
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

// Encodings of an entry's value.
//
// Version 1 (before fencing): accepted partition u16, accepted offset u64
// (never negative, so its first byte is below 0x80), the state.
//
// Version 2: the 3-byte magic "\xff\xff\x82" (its third byte has the high
// bit set, which version 1 never has there), the entry's version u64,
// accepted partition u16, accepted offset i64, raw partition u16, raw offset
// i64, the state. All big-endian. The save script reads the version at bytes
// 4–11 (from 1) of a value whose third byte is ≥ 0x80, and 0 otherwise.
const (
	v1HeaderLen = 2 + 8
	v2HeaderLen = 3 + 8 + 2 + 8 + 2 + 8
	v2Magic     = "\xff\xff\x82"
)

func encode(e *Entry, version uint64) []byte {
	b := make([]byte, 0, v2HeaderLen+len(e.Data))
	b = append(b, v2Magic...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint16(b, uint16(e.Partition))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Offset))
	b = binary.BigEndian.AppendUint16(b, uint16(e.RawPartition))
	b = binary.BigEndian.AppendUint64(b, uint64(e.RawOffset))
	return append(b, e.Data...)
}

func decode(b []byte) (Entry, bool) {
	if len(b) < v1HeaderLen {
		return Entry{}, false
	}
	if b[2] < 0x80 { // version 1: no raw position, version 0
		return Entry{Partition: int(binary.BigEndian.Uint16(b)), Offset: int64(binary.BigEndian.Uint64(b[2:])),
			RawOffset: -1, Data: b[v1HeaderLen:]}, true
	}
	if len(b) < v2HeaderLen || string(b[:3]) != v2Magic {
		return Entry{}, false
	}
	e := Entry{
		Version:      binary.BigEndian.Uint64(b[3:]),
		Partition:    int(binary.BigEndian.Uint16(b[11:])),
		Offset:       int64(binary.BigEndian.Uint64(b[13:])),
		RawPartition: int(binary.BigEndian.Uint16(b[21:])),
		RawOffset:    int64(binary.BigEndian.Uint64(b[23:])),
		Data:         b[v2HeaderLen:],
	}
	if e.Offset < -1 || e.RawOffset < -1 { // Save never writes them
		return Entry{}, false
	}
	return e, true
}

// Load returns the entries for keys in one round trip. A missing key gives
// an entry with both positions -1, version 0 and no data.
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
		out[i] = Entry{Offset: -1, RawOffset: -1}
		if v == nil {
			continue
		}
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("load running state: malformed entry for %s/%q", keys[i].Tenant, keys[i].State)
		}
		if out[i], ok = decode([]byte(str)); !ok {
			return nil, fmt.Errorf("load running state: malformed entry for %s/%q", keys[i].Tenant, keys[i].State)
		}
	}
	return out, nil
}

// saveScript writes every value (ARGV[2+n…1+2n]) with the time to live
// ARGV[1] in milliseconds (0: none), if every key's stored version is
// still the expected one (ARGV[2…1+n], 8 bytes; a missing key or a
// version-1 value is version 0). It returns 0, or the index (from 1) of the
// first key whose version differs, having written nothing. Checked before
// anything is written, in one script: all or nothing. The shebang makes
// Redis refuse it up front when out of memory, rather than fail half-way.
var saveScript = redis.NewScript(`#!lua
local n = #KEYS
local zero = string.rep("\0", 8)
for i = 1, n do
  local cur = redis.call("GET", KEYS[i])
  local v = zero
  if cur and #cur >= 11 and string.byte(cur, 3) >= 128 then
    v = string.sub(cur, 4, 11)
  end
  if v ~= ARGV[1 + i] then
    return i
  end
end
for i = 1, n do
  if ARGV[1] == "0" then
    redis.call("SET", KEYS[i], ARGV[1 + n + i])
  else
    redis.call("SET", KEYS[i], ARGV[1 + n + i], "PX", ARGV[1])
  end
end
return 0
`)

// Save writes every entry in one script call, all or none, each with
// version entry.Version + 1 — but only if every entry's stored version is
// still entry.Version (as Load returned it). If one is not, it writes
// nothing and returns an error wrapping ErrFenced. On success the entries'
// Version fields are advanced, so the caller may save them again.
//
// With WithReplicaWait, a save of nothing still waits until the replicas
// have every write before it (waitReplicated): what the caller loaded may
// be a save whose wait failed — on the primary, on no replica yet — and
// the caller is about to acknowledge work that counts on it (a batch
// retried after such a failure finds its records applied and saves
// nothing). Without the wait, a failover to such a replica would lose that
// state after the batch was committed, and later records would be priced
// from the state before it.
func (s *Store) Save(ctx context.Context, keys []Key, entries []Entry) error {
	if len(keys) != len(entries) {
		return errors.New("save running state: keys and entries differ in number")
	}
	if len(keys) == 0 {
		if err := s.waitReplicated(ctx); err != nil {
			return fmt.Errorf("save running state: %w", err)
		}
		return nil
	}
	rk := make([]string, len(keys))
	args := make([]any, 1+2*len(keys))
	args[0] = strconv.FormatInt(max(s.ttl.Milliseconds(), 0), 10)
	for i := range entries {
		e := &entries[i]
		if e.Partition < 0 || e.Partition > 0xffff || e.Offset < -1 ||
			e.RawPartition < 0 || e.RawPartition > 0xffff || e.RawOffset < -1 || e.Version == ^uint64(0) {
			return fmt.Errorf("save running state: position %d/%d, raw %d/%d or version %d out of range",
				e.Partition, e.Offset, e.RawPartition, e.RawOffset, e.Version)
		}
		rk[i] = keys[i].redisKey()
		args[1+i] = string(binary.BigEndian.AppendUint64(nil, e.Version))
		args[1+len(keys)+i] = encode(e, e.Version+1)
	}
	res, err := s.runSave(ctx, rk, args)
	if err != nil {
		return fmt.Errorf("save running state: %w", err)
	}
	if res != 0 {
		k := keys[res-1]
		return fmt.Errorf("save running state: entry %d of %d (tenant %s) is no longer at version %d: %w",
			res, len(keys), k.Tenant, entries[res-1].Version, ErrFenced)
	}
	for i := range entries {
		entries[i].Version++
	}
	return nil
}

// replicatedKey is what waitReplicated writes: a write of the connection
// is what Redis's WAIT counts from.
const replicatedKey = "rs:replicated"

// waitReplicated, with WithReplicaWait, writes replicatedKey and waits
// (WAIT, on the same connection) until s.replicas replicas have it, and so
// every write the primary made before it: replication is one ordered
// stream. Without a replica wait it does nothing.
func (s *Store) waitReplicated(ctx context.Context) error {
	if s.replicas <= 0 {
		return nil
	}
	var wait *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, replicatedKey, "1", time.Hour)
		wait = p.Do(ctx, "WAIT", s.replicas, s.replicaTimeout.Milliseconds())
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for %d replicas: %w", s.replicas, err)
	}
	got, err := wait.Int()
	if err != nil {
		return fmt.Errorf("wait for %d replicas: %w", s.replicas, err)
	}
	if got < s.replicas {
		return fmt.Errorf("%d of %d replicas have the primary's writes within %v", got, s.replicas, s.replicaTimeout)
	}
	return nil
}

// runSave runs the save script, followed in the same pipeline (one
// connection, which WAIT needs) by WAIT when WithReplicaWait asked for
// replicas. The script's answer counts even when WAIT fell short: a fenced
// save wrote nothing, whatever the replicas say.
func (s *Store) runSave(ctx context.Context, rk []string, args []any) (int, error) {
	if s.replicas <= 0 {
		return saveScript.Run(ctx, s.rdb, rk, args...).Int()
	}
	var save, wait *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		// EVAL, not EVALSHA: a primary promoted by a failover may not have
		// the script cached, and a pipeline cannot fall back.
		save = saveScript.Eval(ctx, p, rk, args...)
		wait = p.Do(ctx, "WAIT", s.replicas, s.replicaTimeout.Milliseconds())
		return nil
	})
	res, serr := save.Int()
	if serr != nil {
		return 0, serr
	}
	if res != 0 {
		return res, nil
	}
	if err != nil {
		return 0, err
	}
	got, err := wait.Int()
	if err != nil {
		return 0, fmt.Errorf("wait for %d replicas: %w", s.replicas, err)
	}
	if got < s.replicas {
		return 0, fmt.Errorf("saved on the primary, but %d of %d replicas acknowledged it within %v", got, s.replicas, s.replicaTimeout)
	}
	return 0, nil
}
