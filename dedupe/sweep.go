package dedupe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/redislock"
)

// PurgeGrace is how long past its retention a claim may stay before the
// sweeper deletes it: a partition that lags behind the others by less than
// this still finds every claim it needs.
const PurgeGrace = 24 * time.Hour

// DefaultSweepInterval is how often the claims are swept.
const DefaultSweepInterval = time.Hour

// sweepLockKey (a redislock.Lock with the interval as TTL) makes one process
// of all those sharing the Redis sweep per interval. It is outside the dd: namespace the sweep scans.
const sweepLockKey = "kakin:dedupe:sweep-lock"

// sweepChunk is how many buckets one purge script call handles (about
// 19 × 200 claims at 10 million ids: a few milliseconds of Redis time).
const sweepChunk = 200

// purgeScript deletes, in each bucket KEYS[i], the claims received before
// the cutoff ARGV[1] packs for it (u32 unix seconds, 4 bytes per key), and
// anything that is not a claim. It returns {deleted, kept}. A bucket left
// empty disappears (Redis deletes empty hashes).
const purgeScript = `
local cutoffs, unpack4, deleted, kept = ARGV[1], struct.unpack, 0, 0
for i = 1, #KEYS do
  local cutoff = unpack4('>I4', cutoffs, (i - 1) * 4 + 1)
  local all = redis.call('HGETALL', KEYS[i])
  local dels = {}
  for j = 2, #all, 2 do
    local c = all[j]
    if #c ~= 16 or unpack4('>I4', c, 13) < cutoff then dels[#dels + 1] = all[j - 1] else kept = kept + 1 end
  end
  for j = 1, #dels, 500 do
    redis.call('HDEL', KEYS[i], unpack(dels, j, math.min(j + 499, #dels)))
  end
  deleted = deleted + #dels
end
return {deleted, kept}
`

var purge = redis.NewScript(purgeScript)

// Sweeper deletes claims once they are older than their tenant's retention
// (window + future skew) plus PurgeGrace. Claims carry no Redis TTL: the
// sweep is the only thing that forgets them, so a sweeper that stops costs
// memory, never a missed duplicate. Every dedupe process runs one; a lock in
// Redis lets one of them sweep per interval.
type Sweeper struct {
	rdb      redis.UniversalClient
	windows  Windows
	skew     time.Duration
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	owner    string

	lastSuccess prometheus.Gauge
	lastSeconds prometheus.Gauge
	kept        prometheus.Gauge
	deleted     prometheus.Counter
	failures    prometheus.Counter
}

// NewSweeper returns a sweeper over the claims in rdb. windows and skew must
// be the stage's (Options.Windows, Options.FutureSkew); interval 0 means
// DefaultSweepInterval; reg may be nil.
func NewSweeper(rdb redis.UniversalClient, windows Windows, skew, interval time.Duration, log *slog.Logger, reg prometheus.Registerer) *Sweeper {
	if windows == nil {
		windows = FixedWindow(DefaultWindow)
	}
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sweeper{rdb: rdb, windows: windows, skew: skew, interval: interval, log: log, now: clock.Now,
		owner: fmt.Sprintf("%d", time.Now().UnixNano()),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_dedupe_sweep_last_success_timestamp_seconds",
			Help: "Unix time of the last completed sweep of expired claims by this process (0: none yet)."}),
		lastSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_dedupe_sweep_duration_seconds",
			Help: "How long the last completed sweep took."}),
		kept: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_dedupe_claims_remembered",
			Help: "Claims left in Redis after the last sweep by this process: the ids inside their windows."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_dedupe_claims_swept_total",
			Help: "Claims deleted by sweeps because they outlived their retention."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_dedupe_sweep_failures_total",
			Help: "Sweeps that failed (retried at the next interval)."}),
	}
	if reg != nil {
		reg.MustRegister(s.lastSuccess, s.lastSeconds, s.kept, s.deleted, s.failures)
	}
	return s
}

// Run sweeps every interval, when this process wins the interval's lock,
// until ctx ends. It starts once the tenant windows are loaded; a failed
// sweep releases the lock and is tried again a minute later. It returns nil;
// failures are logged and counted.
func (s *Sweeper) Run(ctx context.Context) error {
	for {
		wait := s.interval
		if _, loaded := s.windows.Window(""); !loaded {
			wait = time.Second
		} else if err := s.sweepIfLocked(ctx); err != nil && ctx.Err() == nil {
			s.failures.Inc()
			s.log.Error("dedupe sweep failed; trying again in a minute", "err", err)
			wait = min(wait, time.Minute)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// sweepIfLocked sweeps if this process takes the interval's lock. The lock
// is not released after a sweep: it expires with the interval, so that one
// process sweeps per interval. A failed sweep releases it.
func (s *Sweeper) sweepIfLocked(ctx context.Context) error {
	lock, won, err := redislock.TryAcquire(ctx, s.rdb, sweepLockKey, s.owner, s.interval)
	if err != nil {
		return fmt.Errorf("dedupe sweep: lock: %w", err)
	}
	if !won {
		return nil
	}
	if _, err := s.Sweep(ctx); err != nil {
		_ = lock.Release(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// SweepStats is what one sweep did.
type SweepStats struct {
	Buckets, Deleted, Kept int64
}

// errWindowsNotLoadedSweep stops a sweep while the tenant windows are
// unknown: a window guessed too short would delete live claims.
var errWindowsNotLoadedSweep = errors.New("dedupe sweep: tenant windows not loaded yet")

// Sweep makes one pass over every bucket now: over each master of a Redis
// Cluster in parallel, or over the single Redis.
func (s *Sweeper) Sweep(ctx context.Context) (SweepStats, error) {
	start := time.Now()
	now := s.now()
	var st SweepStats
	var mu sync.Mutex
	err := eachServer(ctx, s.rdb, func(ctx context.Context, server redis.UniversalClient) error {
		part, err := s.sweepNode(ctx, server, now)
		mu.Lock()
		defer mu.Unlock()
		st.Buckets, st.Deleted, st.Kept = st.Buckets+part.Buckets, st.Deleted+part.Deleted, st.Kept+part.Kept
		return err
	})
	if err != nil {
		return st, err
	}
	took := time.Since(start)
	s.lastSuccess.Set(float64(s.now().Unix()))
	s.lastSeconds.Set(took.Seconds())
	s.kept.Set(float64(st.Kept))
	s.log.Info("dedupe sweep done", "buckets", st.Buckets, "deleted", st.Deleted, "kept", st.Kept, "took", took.Round(time.Millisecond))
	return st, nil
}

// sweepNode scans the buckets on node and purges them through s.rdb, in
// calls of up to sweepChunk buckets of one group (one cluster slot).
func (s *Sweeper) sweepNode(ctx context.Context, node redis.UniversalClient, now time.Time) (SweepStats, error) {
	var st SweepStats
	type pending struct {
		keys    []string
		cutoffs []byte
	}
	groups := map[string]*pending{}
	flush := func(p *pending) error {
		if len(p.keys) == 0 {
			return nil
		}
		res, err := purge.Run(ctx, s.rdb, p.keys, p.cutoffs).Int64Slice()
		if err != nil {
			return fmt.Errorf("dedupe sweep: purge: %w", err)
		}
		if len(res) != 2 {
			return fmt.Errorf("dedupe sweep: purge answered %v", res)
		}
		st.Buckets += int64(len(p.keys))
		st.Deleted += res[0]
		st.Kept += res[1]
		s.deleted.Add(float64(res[0]))
		p.keys, p.cutoffs = p.keys[:0], p.cutoffs[:0]
		return nil
	}
	iter := node.Scan(ctx, 0, keyPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		tenant, tag, ok := bucketTenant(key)
		if !ok {
			continue
		}
		window, loaded := s.windows.Window(tenant)
		if !loaded {
			return st, errWindowsNotLoadedSweep
		}
		cutoff := now.Add(-window - s.skew - PurgeGrace).Unix()
		cutoff = max(0, min(cutoff, math.MaxUint32))
		p := groups[tag]
		if p == nil {
			p = &pending{}
			groups[tag] = p
		}
		p.keys = append(p.keys, key)
		p.cutoffs = binary.BigEndian.AppendUint32(p.cutoffs, uint32(cutoff))
		if len(p.keys) == sweepChunk {
			if err := flush(p); err != nil {
				return st, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return st, fmt.Errorf("dedupe sweep: scan: %w", err)
	}
	for _, p := range groups {
		if err := flush(p); err != nil {
			return st, err
		}
	}
	return st, nil
}
