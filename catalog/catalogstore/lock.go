package catalogstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kakin-dev/kakin/internal/redislock"
)

// ErrBusy means the tenant's write lock could not be taken in time: another
// writer holds it. Retry.
var ErrBusy = errors.New("catalog: another write of this tenant is in progress")

// errLockLost means the writer held the tenant's lock longer than its TTL.
var errLockLost = errors.New("catalog: write lock lost (held longer than its TTL)")

// A tenant's write lock is a redislock.Lock on lockKey: it serialises every
// catalogue write of a tenant across processes.
func lockKey(tenant string) string { return "catalog:lock:{" + tenant + "}" }

// acquire takes the tenant's lock, waiting up to wait.
func acquire(ctx context.Context, rdb redis.UniversalClient, tenant string, ttl, wait time.Duration) (*redislock.Lock, error) {
	l, err := redislock.Acquire(ctx, rdb, lockKey(tenant), "", ttl, wait)
	switch {
	case errors.Is(err, redislock.ErrNotAcquired):
		return nil, ErrBusy
	case err != nil:
		return nil, fmt.Errorf("catalog: write lock: %w", err)
	}
	return l, nil
}

// extend renews the lock's TTL; it fails if the lock was lost (expired and
// perhaps taken by another writer).
func extend(ctx context.Context, l *redislock.Lock) error {
	err := l.Renew(ctx)
	switch {
	case errors.Is(err, redislock.ErrLost):
		return errLockLost
	case err != nil:
		return fmt.Errorf("catalog: extend write lock: %w", err)
	}
	return nil
}
