package redislock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// env is the real Redis every test of this package shares; each case uses
// keys of its own.
var env struct {
	rdb *redis.Client
}

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Redis: true}, func(context.Context) error {
		env.rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		testenv.AtExit(func() { env.rdb.Close() })
		return nil
	})
}

var keySeq atomic.Int64

func TestLock(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server; skipped in -short mode")
	}
	// Generous: what a case waits for happens in milliseconds; the bound is
	// only there so that a broken lock fails instead of hanging.
	const patience = 30 * time.Second
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, key string)
	}{
		{"exclusive acquire", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, time.Minute)
			if _, ok, err := TryAcquire(ctx, env.rdb, key, "b", time.Minute); err != nil || ok {
				t.Fatalf("a second holder took a held lock: ok=%v err=%v", ok, err)
			}
			if _, err := Acquire(ctx, env.rdb, key, "b", time.Minute, 20*time.Millisecond); !errors.Is(err, ErrNotAcquired) {
				t.Fatalf("Acquire of a held lock: %v, want ErrNotAcquired", err)
			}
			if v := env.rdb.Get(ctx, key).Val(); v != a.token || !strings.HasPrefix(v, "a/") {
				t.Fatalf("key holds %q, want the first holder's token %q (owner-prefixed)", v, a.token)
			}
		}},
		{"release by the owner frees it", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, time.Minute)
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			mustTake(t, ctx, key, time.Minute)
		}},
		{"release by a non-owner refused", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, time.Minute)
			other := &Lock{rdb: env.rdb, key: key, token: "someone-else", ttl: time.Minute}
			if err := other.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := other.Renew(ctx); !errors.Is(err, ErrLost) {
				t.Fatalf("a non-owner's Renew: %v, want ErrLost", err)
			}
			if v := env.rdb.Get(ctx, key).Val(); v != a.token {
				t.Fatalf("a non-owner's release changed the lock: key holds %q", v)
			}
		}},
		{"expiry lets another take it", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, 100*time.Millisecond)
			b, err := Acquire(ctx, env.rdb, key, "b", time.Minute, patience)
			if err != nil {
				t.Fatal("the expired lock could not be taken:", err)
			}
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if v := env.rdb.Get(ctx, key).Val(); v != b.token {
				t.Fatalf("the old holder's release freed the new holder's lock: key holds %q", v)
			}
		}},
		{"acquire waits for a release", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, time.Minute)
			got := make(chan error, 1)
			go func() {
				_, err := Acquire(ctx, env.rdb, key, "b", time.Minute, patience)
				got <- err
			}()
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatal("a waiting Acquire did not get the released lock:", err)
			}
		}},
		{"acquire stops when its context ends", func(t *testing.T, ctx context.Context, key string) {
			mustTake(t, ctx, key, time.Minute)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := Acquire(cctx, env.rdb, key, "b", time.Minute, patience); !errors.Is(err, context.Canceled) {
				t.Fatalf("Acquire with a cancelled context: %v, want context.Canceled", err)
			}
		}},
		{"renew keeps it", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, time.Minute)
			// As if most of the TTL had passed.
			if err := env.rdb.PExpire(ctx, key, 50*time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			if err := a.Renew(ctx); err != nil {
				t.Fatal(err)
			}
			if ttl := env.rdb.PTTL(ctx, key).Val(); ttl < 30*time.Second {
				t.Fatalf("after Renew the key's TTL is %v, want the full minute back", ttl)
			}
			if _, ok, _ := TryAcquire(ctx, env.rdb, key, "b", time.Minute); ok {
				t.Fatal("a second holder took a renewed lock")
			}
		}},
		{"renew after loss reports loss", func(t *testing.T, ctx context.Context, key string) {
			a := mustTake(t, ctx, key, 100*time.Millisecond)
			b, err := Acquire(ctx, env.rdb, key, "b", time.Minute, patience)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Renew(ctx); !errors.Is(err, ErrLost) {
				t.Fatalf("Renew of a lost lock: %v, want ErrLost", err)
			}
			if v := env.rdb.Get(ctx, key).Val(); v != b.token {
				t.Fatalf("the old holder's Renew touched the new holder's lock: key holds %q", v)
			}
			if err := env.rdb.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			if err := b.Renew(ctx); !errors.Is(err, ErrLost) {
				t.Fatalf("Renew of a deleted lock: %v, want ErrLost", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
			defer cancel()
			key := fmt.Sprintf("test:redislock:%d", keySeq.Add(1))
			c.run(t, ctx, key)
		})
	}
}

// mustTake takes key for "a" or fails the test.
func mustTake(t *testing.T, ctx context.Context, key string, ttl time.Duration) *Lock {
	t.Helper()
	l, ok, err := TryAcquire(ctx, env.rdb, key, "a", ttl)
	if err != nil || !ok {
		t.Fatalf("could not take a free lock: ok=%v err=%v", ok, err)
	}
	return l
}
