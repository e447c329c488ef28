package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kakin-dev/kakin/internal/redislock"
)

// Leases hands out the right to run a job: one holder at a time, per job,
// across every process sharing the Redis. A lease is a redislock.Lock (a key
// holding its owner's token with a TTL); the holder renews it (Keep) and
// deletes it when done. A holder that stops renewing loses it when the TTL
// runs out.
type Leases struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewLeases returns leases of the given TTL kept in rdb.
func NewLeases(rdb redis.UniversalClient, ttl time.Duration) *Leases {
	return &Leases{rdb: rdb, ttl: ttl}
}

func leaseKey(tenant, id string) string { return "job:lease:" + tenant + ":" + id }

// Lease is a held lease.
type Lease struct {
	ls   *Leases
	lock *redislock.Lock

	mu      sync.Mutex
	renewed time.Time // when Redis last confirmed the lease (or granted it)
	lost    chan struct{}
	once    sync.Once
}

// Acquire takes the lease of the job for owner, if nobody holds it.
func (ls *Leases) Acquire(ctx context.Context, tenant, id, owner string) (*Lease, bool, error) {
	start := time.Now()
	lock, ok, err := redislock.TryAcquire(ctx, ls.rdb, leaseKey(tenant, id), owner, ls.ttl)
	if err != nil {
		return nil, false, fmt.Errorf("jobs: acquire lease: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	return &Lease{ls: ls, lock: lock, renewed: start, lost: make(chan struct{})}, true, nil
}

// errLeaseLost means another holder has the lease, or it expired.
var errLeaseLost = errors.New("job lease lost")

// renew extends the lease by the TTL if it is still ours.
func (l *Lease) renew(ctx context.Context) error {
	start := time.Now()
	err := l.lock.Renew(ctx)
	if errors.Is(err, redislock.ErrLost) {
		return errLeaseLost
	}
	if err != nil {
		return fmt.Errorf("jobs: renew lease: %w", err)
	}
	l.mu.Lock()
	l.renewed = start
	l.mu.Unlock()
	return nil
}

// Valid reports whether the lease is still certainly ours: renewed within
// its TTL, less a safety margin, and not declared lost.
func (l *Lease) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.renewed) < l.ls.ttl-l.ls.ttl/5
}

// Lost is closed once the lease is known lost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) markLost() { l.once.Do(func() { close(l.lost) }) }

// Keep renews the lease every third of its TTL until ctx ends. When it is
// taken by someone else, or cannot be renewed before it would expire, Lost
// is closed and Keep returns.
func (l *Lease) Keep(ctx context.Context) {
	tick := time.NewTicker(l.ls.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.ls.ttl/3)
		err := l.renew(rctx)
		cancel()
		if errors.Is(err, errLeaseLost) || (err != nil && !l.Valid()) {
			l.markLost()
			return
		}
	}
}

// Release gives the lease up, if it is still ours.
func (l *Lease) Release(ctx context.Context) error {
	l.markLost()
	if err := l.lock.Release(ctx); err != nil {
		return fmt.Errorf("jobs: release lease: %w", err)
	}
	return nil
}
