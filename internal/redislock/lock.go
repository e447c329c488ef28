// Package redislock is a lock (a lease) held in one Redis key: SET NX PX with
// a random token as the value, renewed and released only by the holder of
// that token (compare-and-PEXPIRE and compare-and-DEL in Lua). A holder that
// stops renewing loses the lock when its TTL runs out.
//
// A lock is a single key, so it works alike on a single Redis and on a Redis
// Cluster (any redis.UniversalClient).
package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotAcquired means Acquire waited as long as it was allowed to while
// another holder kept the lock.
var ErrNotAcquired = errors.New("redislock: held by another owner")

// ErrLost means the lock is no longer this holder's: it expired, and perhaps
// another holder has taken it.
var ErrLost = errors.New("redislock: lock lost")

var (
	renewScript   = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)

// Lock is a held lock. Its methods are safe for concurrent use.
type Lock struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
}

// TryAcquire takes the lock key for ttl if nobody holds it: (nil, false, nil)
// when someone does. owner, if not empty, is written before the random token
// ("owner/token") so that whoever reads the key sees who holds it.
func TryAcquire(ctx context.Context, rdb redis.UniversalClient, key, owner string, ttl time.Duration) (*Lock, bool, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, false, fmt.Errorf("redislock: token: %w", err)
	}
	token := hex.EncodeToString(b)
	if owner != "" {
		token = owner + "/" + token
	}
	ok, err := rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("redislock: acquire %s: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	return &Lock{rdb: rdb, key: key, token: token, ttl: ttl}, true, nil
}

// Acquire takes the lock key for ttl, trying again (every 2 ms at first,
// backing off to every 50 ms) while another holder has it, for up to wait.
// It returns ErrNotAcquired when the lock is still held after wait, and the
// context's error, wrapped, when ctx ends first.
func Acquire(ctx context.Context, rdb redis.UniversalClient, key, owner string, ttl, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	backoff := 2 * time.Millisecond
	for {
		l, ok, err := TryAcquire(ctx, rdb, key, owner, ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, ErrNotAcquired
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redislock: waiting for %s: %w", key, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// Key is the lock's Redis key.
func (l *Lock) Key() string { return l.key }

// Renew sets the lock's TTL back to the full TTL if it is still this
// holder's; ErrLost if it is not.
func (l *Lock) Renew(ctx context.Context) error {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redislock: renew %s: %w", l.key, err)
	}
	if n == 0 {
		return ErrLost
	}
	return nil
}

// Release deletes the lock if it is still this holder's; a lock already lost
// is left to its new holder, and that is not an error.
func (l *Lock) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("redislock: release %s: %w", l.key, err)
	}
	return nil
}
