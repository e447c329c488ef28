package redismain

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/redis/go-redis/v9"
)

// Under a stream of writes, each followed by WAIT 1 in its pipeline (as
// state saves must be on a replicated Redis), the primary is SIGKILLed: the
// failover client finds the primary the Sentinels promote and goes on, and
// every write that was acknowledged (with WAIT) is on the new primary. A
// write that failed is retried with the same key and value, so a retry
// never counts twice.
func TestSentinelFailoverKeepsWaitedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	ctx := context.Background()
	s, err := devstack.StartRedisSentinel(ctx, filepath.Join(t.TempDir(), "sentinel"), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := NewClient(Config{SentinelAddrs: s.SentinelAddrs(), Master: devstack.SentinelMaster})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	oldPrimary, err := s.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var acked atomic.Int64 // writes 0..acked-1 are acknowledged
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var wait *redis.Cmd
			_, err := c.Pipelined(wctx, func(p redis.Pipeliner) error {
				p.Set(wctx, "state:"+strconv.Itoa(i), i, 0)
				wait = Wait(wctx, p, 1, time.Second)
				return nil
			})
			cancel()
			if err == nil {
				err = Waited(wait, 1)
			}
			if err != nil {
				continue // retried: same key, same value
			}
			i++
			acked.Store(int64(i))
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (acked %d)", what, acked.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("200 writes", func() bool { return acked.Load() >= 200 })
	if err := s.Node(oldPrimary).Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := acked.Load()
	start := time.Now()
	waitFor("200 writes after the failover", func() bool { return acked.Load() >= killedAt+200 })
	t.Logf("writes resumed through the new primary %v after the SIGKILL", time.Since(start).Round(time.Millisecond))
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	newPrimary, err := s.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newPrimary == oldPrimary {
		t.Fatalf("the sentinels still name %s", oldPrimary)
	}
	n := acked.Load()
	var missing []string
	for i := range n {
		v, err := c.Get(ctx, "state:"+strconv.Itoa(int(i))).Result()
		if errors.Is(err, redis.Nil) || (err == nil && v != strconv.Itoa(int(i))) {
			missing = append(missing, fmt.Sprint(i))
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost in the failover: %v", len(missing), n, missing[:min(len(missing), 20)])
	}
	t.Logf("%d acknowledged writes, all on the new primary %s", n, newPrimary)
}
