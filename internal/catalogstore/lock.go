package catalogstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBusy means the tenant's write lock could not be taken in time: another
// writer holds it. Retry.
var ErrBusy = errors.New("catalog: another write of this tenant is in progress")

// writeLock is a tenant's write lock in Redis: SET NX PX with a random token,
// released and extended only by its holder (compare-and-delete/expire in
// Lua). It serialises every catalogue write of a tenant across processes.
type writeLock struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
}

var (
	unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
	extendScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
)

func lockKey(tenant string) string { return "catalog:lock:{" + tenant + "}" }

// acquire takes the tenant's lock, waiting up to wait.
func acquire(ctx context.Context, rdb redis.UniversalClient, tenant string, ttl, wait time.Duration) (*writeLock, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	l := &writeLock{rdb: rdb, key: lockKey(tenant), token: hex.EncodeToString(b), ttl: ttl}
	deadline := time.Now().Add(wait)
	backoff := 2 * time.Millisecond
	for {
		ok, err := rdb.SetNX(ctx, l.key, l.token, ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("catalog: write lock: %w", err)
		}
		if ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// extend renews the lock's TTL; it fails if the lock was lost (expired and
// perhaps taken by another writer).
func (l *writeLock) extend(ctx context.Context) error {
	n, err := extendScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("catalog: extend write lock: %w", err)
	}
	if n == 0 {
		return errors.New("catalog: write lock lost (held longer than its TTL)")
	}
	return nil
}

// release frees the lock if this writer still holds it.
func (l *writeLock) release(ctx context.Context) {
	_ = unlockScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err()
}
