package runstate

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/redismain"
)

// Without the replicas WithReplicaWait asks for, a save fails — though it
// is on the primary: Load shows it, and the batch's retry skips it.
func TestSaveFailsWithoutReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	s := New(rdb, time.Hour).WithReplicaWait(1, 50*time.Millisecond)
	keys := []Key{{"t-wait", "cust-1/fee/2026-05"}}
	if err := s.Save(ctx, keys, []Entry{{Partition: 1, Offset: 7, Data: []byte("x")}}); err == nil {
		t.Fatal("a save waited for a replica that does not exist and succeeded")
	}
	got, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Applied(1, 7) {
		t.Fatalf("entry = %+v, want the save applied on the primary", got[0])
	}
}

// A save of nothing waits for the replicas too: the caller's Load may have
// read a save whose WAIT failed (on the primary, on no replica yet), and the
// batch it then acknowledges counts on that state. Without a replica, it
// fails; a store that waits for none saves nothing and succeeds.
func TestEmptySaveWaitsForReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	if err := New(rdb, time.Hour).WithReplicaWait(1, 50*time.Millisecond).Save(ctx, nil, nil); err == nil {
		t.Error("an empty save waited for a replica that does not exist and succeeded")
	}
	if err := New(rdb, time.Hour).Save(ctx, nil, nil); err != nil {
		t.Errorf("an empty save without a replica wait: %v", err)
	}
}

// Saves with WithReplicaWait(1) under load through a Sentinel failover
// client; the primary is SIGKILLed. Every save that returned nil is on the
// promoted primary; a failed save is retried as the rater does (Load, skip
// what is applied, save the rest), so none is applied twice.
func TestSavesSurviveSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	ctx := context.Background()
	rs, err := devstack.StartRedisSentinel(ctx, filepath.Join(t.TempDir(), "sentinel"), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Stop()
	c, err := redismain.NewClient(redismain.Config{SentinelAddrs: rs.SentinelAddrs(), Master: devstack.SentinelMaster})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := New(c, time.Hour).WithReplicaWait(1, time.Second)
	key := func(i int) []Key { return []Key{{"t-fo", fmt.Sprintf("cust-%d/fee/2026-05", i)}} }

	var acked atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			got, err := s.Load(sctx, key(i))
			if err == nil && !got[0].Applied(0, int64(i)) {
				e := got[0]
				e.Partition, e.Offset, e.Data = 0, int64(i), []byte(fmt.Sprint(i))
				err = s.Save(sctx, key(i), []Entry{e})
			}
			cancel()
			if err != nil {
				continue
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
				t.Fatalf("timed out waiting for %s (%d saves acknowledged)", what, acked.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("100 saves", func() bool { return acked.Load() >= 100 })
	primary, err := rs.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Node(primary).Kill(); err != nil {
		t.Fatal(err)
	}
	at, start := acked.Load(), time.Now()
	waitFor("100 saves after the failover", func() bool { return acked.Load() >= at+100 })
	t.Logf("saves resumed %v after the SIGKILL", time.Since(start).Round(time.Millisecond))
	close(stop)
	<-done
	n := int(acked.Load())
	for i := range n {
		got, err := s.Load(ctx, key(i))
		if err != nil {
			t.Fatal(err)
		}
		if !got[0].Applied(0, int64(i)) || string(got[0].Data) != fmt.Sprint(i) || got[0].Version != 1 {
			t.Fatalf("save %d of %d after the failover: %+v, want applied once (version 1)", i, n, got[0])
		}
	}
	t.Logf("%d acknowledged saves, each once, on the promoted primary", n)
}
