package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// countHandler is a job kind that counts from its checkpoint to params.n,
// saving a checkpoint after every step.
type countHandler struct {
	mu       sync.Mutex
	starts   map[string][]uint64 // job id -> checkpoint each run started from
	finished map[string]Job

	holdAt  uint64        // after this step, wait for hold (0: never)
	hold    chan struct{} // closed to let held runs go on
	reached chan string   // gets the job id when a run reaches holdAt
	stopped chan string   // gets the job id when a held run stopped because its context ended
}

func newCountHandler() *countHandler {
	return &countHandler{starts: map[string][]uint64{}, finished: map[string]Job{}, reached: make(chan string, 16), stopped: make(chan string, 16)}
}

type countParams struct {
	N uint64 `json:"n"`
}
type countCheckpoint struct {
	Next uint64 `json:"next"`
}

func (h *countHandler) Run(ctx context.Context, run *Run) (Outcome, error) {
	j := run.Job()
	var p countParams
	var cp countCheckpoint
	_ = json.Unmarshal(j.Params, &p)
	_ = json.Unmarshal(j.Checkpoint, &cp)
	h.mu.Lock()
	h.starts[j.ID] = append(h.starts[j.ID], cp.Next)
	h.mu.Unlock()
	for k := cp.Next; k < p.N; k++ {
		if err := ctx.Err(); err != nil {
			return Outcome{}, err
		}
		next, _ := json.Marshal(countCheckpoint{Next: k + 1})
		if err := run.Save(ctx, Counts{Total: p.N, Processed: k + 1, Accepted: k + 1}, next); err != nil {
			return Outcome{}, err
		}
		if c, err := run.CancelRequested(ctx); err == nil && c {
			return Outcome{Status: StatusCancelled}, nil
		}
		if h.holdAt == k+1 && h.hold != nil {
			h.reached <- j.ID
			select {
			case <-h.hold:
			case <-ctx.Done():
				h.stopped <- j.ID
				return Outcome{}, ctx.Err()
			}
		}
	}
	return Outcome{Status: StatusCompleted}, nil
}

func (h *countHandler) Finished(j Job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.finished[j.ID] = j
}

func (h *countHandler) startsOf(id string) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.starts[id]...)
}

func (h *countHandler) finishedJob(id string) (Job, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.finished[id]
	return j, ok
}

const countKind = "count_test"

func createCount(t *testing.T, s *Store, tenant string, n uint64) Job {
	t.Helper()
	p, _ := json.Marshal(countParams{N: n})
	j, err := s.Create(context.Background(), Job{Tenant: tenant, ID: NewID(), Kind: countKind, Params: p,
		Checkpoint: json.RawMessage(`{"next":0}`), CreatedBy: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// startRunner runs a runner until the test ends or stop is called.
func startRunner(t *testing.T, s *Store, h Handler, ttl time.Duration, owner string) (r *Runner, stop func()) {
	t.Helper()
	r = NewRunner(Options{Store: s, Redis: env.rdb, LeaseTTL: ttl, ScanInterval: 100 * time.Millisecond,
		Workers: 2, MaxAttempts: 3, Owner: owner, Log: slog.New(slog.DiscardHandler)})
	r.Register(countKind, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return r, stop
}

func waitStatus(t *testing.T, s *Store, j Job, want Status, timeout time.Duration) Job {
	t.Helper()
	var got Job
	waitFor(t, timeout, fmt.Sprintf("job %s to be %s", j.ID, want), func() (bool, string) {
		var err error
		got, err = s.Get(context.Background(), j.Tenant, j.ID)
		if err != nil {
			return false, err.Error()
		}
		return got.Status == want, fmt.Sprintf("%s processed %d error %q", got.Status, got.Processed, got.Error)
	})
	return got
}

func TestRunnerRunsAJobToCompletion(t *testing.T) {
	s, _ := newStore(t)
	h := newCountHandler()
	startRunner(t, s, h, 2*time.Second, "a")
	j := createCount(t, s, newTenant("run"), 5)
	got := waitStatus(t, s, j, StatusCompleted, 10*time.Second)
	if got.Processed != 5 || got.Total != 5 || got.FinishedAt.IsZero() || got.Worker != "" || got.Attempts != 0 {
		t.Errorf("final job %+v", got)
	}
	if starts := h.startsOf(j.ID); len(starts) != 1 || starts[0] != 0 {
		t.Errorf("runs started from %v, want one from 0", starts)
	}
	waitFor(t, 5*time.Second, "Finished to be called", func() (bool, string) {
		_, ok := h.finishedJob(j.ID)
		return ok, ""
	})
	if n, _ := env.rdb.Exists(context.Background(), leaseKey(j.Tenant, j.ID)).Result(); n != 0 {
		t.Error("the lease is still held after the job finished")
	}
}

// A process that died holding a job (its lease still in Redis, its name in
// the row): another process waits until the lease expires, then resumes
// from the last checkpoint, counting the failed attempt.
func TestTakeoverResumesFromCheckpointAfterTheLeaseExpires(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j := createCount(t, s, newTenant("takeover"), 10)
	const ttl = 1500 * time.Millisecond
	dead, ok, err := NewLeases(env.rdb, ttl).Acquire(ctx, j.Tenant, j.ID, "dead")
	if err != nil || !ok {
		t.Fatal("could not take the lease for the dead worker", err)
	}
	crashed := &Run{r: &Runner{o: Options{Store: s}}, lease: dead, epoch: 1, job: j}
	if err := crashed.update(ctx, func(j *Job) { j.Status, j.Worker = StatusProcessing, "dead" }); err != nil {
		t.Fatal(err)
	}
	if err := crashed.Save(ctx, Counts{Total: 10, Processed: 4, Accepted: 4}, json.RawMessage(`{"next":4}`)); err != nil {
		t.Fatal(err)
	}
	deadAt := time.Now()
	// The dead worker never renews nor releases its lease.

	h := newCountHandler()
	startRunner(t, s, h, ttl, "b")
	time.Sleep(ttl / 2)
	if starts := h.startsOf(j.ID); len(starts) != 0 {
		t.Fatalf("the job was taken over while the lease was still held (after %s)", time.Since(deadAt))
	}
	got := waitStatus(t, s, j, StatusCompleted, 15*time.Second)
	if starts := h.startsOf(j.ID); len(starts) != 1 || starts[0] != 4 {
		t.Errorf("runs started from %v, want one resuming from checkpoint 4", starts)
	}
	if got.Processed != 10 || got.Attempts != 1 || got.Epoch != 2 {
		t.Errorf("final job processed %d attempts %d epoch %d, want 10, 1, 2", got.Processed, got.Attempts, got.Epoch)
	}
}

// A graceful shutdown hands the job over: the next process resumes it from
// the checkpoint without counting an attempt.
func TestShutdownHandsOverAndAnotherRunnerResumes(t *testing.T) {
	s, _ := newStore(t)
	h := newCountHandler()
	h.holdAt, h.hold = 3, make(chan struct{})
	_, stopA := startRunner(t, s, h, 2*time.Second, "a")
	j := createCount(t, s, newTenant("handover"), 6)
	select {
	case <-h.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the run never reached step 3")
	}
	stopA()
	got, err := s.Get(context.Background(), j.Tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusProcessing || got.Worker != "" || got.Processed != 3 {
		t.Fatalf("after shutdown: status %s worker %q processed %d, want processing, handed over, 3", got.Status, got.Worker, got.Processed)
	}
	close(h.hold)
	startRunner(t, s, h, 2*time.Second, "b")
	got = waitStatus(t, s, j, StatusCompleted, 10*time.Second)
	if starts := h.startsOf(j.ID); len(starts) != 2 || starts[1] != 3 {
		t.Errorf("runs started from %v, want 0 then 3", starts)
	}
	if got.Attempts != 0 || got.Processed != 6 {
		t.Errorf("attempts %d processed %d, want 0 and 6", got.Attempts, got.Processed)
	}
}

// A job whose runs keep dying is failed visibly, never left processing.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j := createCount(t, s, newTenant("giveup"), 10)
	// Two runs already died holding it (MaxAttempts is 3 in startRunner).
	lease, _, err := NewLeases(env.rdb, time.Second).Acquire(ctx, j.Tenant, j.ID, "dead")
	if err != nil {
		t.Fatal(err)
	}
	crashed := &Run{r: &Runner{o: Options{Store: s}}, lease: lease, epoch: 2, job: j}
	if err := crashed.update(ctx, func(j *Job) {
		j.Status, j.Worker, j.Attempts, j.Error = StatusProcessing, "dead", 2, "boom"
	}); err != nil {
		t.Fatal(err)
	}
	_ = lease.Release(ctx)
	h := newCountHandler()
	startRunner(t, s, h, time.Second, "b")
	got := waitStatus(t, s, j, StatusFailed, 10*time.Second)
	if !strings.Contains(got.Error, "gave up after 3 runs") || !strings.Contains(got.Error, "boom") {
		t.Errorf("error %q", got.Error)
	}
	if len(h.startsOf(j.ID)) != 0 {
		t.Error("the handler ran a job it should have given up")
	}
	if _, ok := h.finishedJob(j.ID); !ok {
		t.Error("Finished not called for the failed job")
	}
}

// Rows of a worker that lost its lease (a lower epoch) never replace those
// of the worker that took over, however many it writes.
func TestStaleWorkerRowsDoNotReplaceTheNewHolders(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j := createCount(t, s, newTenant("fence"), 10)
	valid := func() *Lease {
		return &Lease{ls: &Leases{ttl: time.Hour}, renewed: time.Now(), lost: make(chan struct{})}
	}
	old := &Run{r: &Runner{o: Options{Store: s}}, lease: valid(), epoch: 1, job: j}
	if err := old.Save(ctx, Counts{Processed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	cur := &Run{r: &Runner{o: Options{Store: s}}, lease: valid(), epoch: 2, job: old.Job()}
	if err := cur.Save(ctx, Counts{Processed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // the stale worker goes on writing
		if err := old.Save(ctx, Counts{Processed: uint64(100 + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, j.Tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Processed != 7 || got.Epoch != 2 {
		t.Errorf("job shows processed %d epoch %d, want the new holder's 7 / 2", got.Processed, got.Epoch)
	}
	// And a run whose lease is not valid writes nothing at all.
	lost := valid()
	lost.markLost()
	gone := &Run{r: &Runner{o: Options{Store: s}}, lease: lost, epoch: 3, job: got}
	if err := gone.Save(ctx, Counts{Processed: 999}, nil); err == nil {
		t.Error("a run without its lease saved")
	}
}

// When the lease is taken away (Redis lost it and another process took it),
// the run stops within a renewal interval and writes nothing more.
func TestRunStopsWhenItsLeaseIsLost(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := newCountHandler()
	h.holdAt, h.hold = 2, make(chan struct{})
	defer close(h.hold)
	startRunner(t, s, h, 900*time.Millisecond, "a")
	j := createCount(t, s, newTenant("lost"), 5)
	select {
	case <-h.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the run never reached step 2")
	}
	if err := env.rdb.Set(ctx, leaseKey(j.Tenant, j.ID), "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.stopped:
	case <-time.After(3 * time.Second):
		t.Fatal("the run went on after its lease was taken")
	}
	time.Sleep(time.Second) // several renewal intervals
	got, err := s.Get(ctx, j.Tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusProcessing || got.Processed != 2 {
		t.Errorf("after losing its lease the run wrote on: %s processed %d", got.Status, got.Processed)
	}
	if v, _ := env.rdb.Get(ctx, leaseKey(j.Tenant, j.ID)).Result(); v != "someone-else" {
		t.Errorf("the stopped run released someone else's lease: %q", v)
	}
}

func TestCancel(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ten := newTenant("cancel")
	h := newCountHandler()
	h.holdAt, h.hold = 2, make(chan struct{})

	// Cancelled before any worker picked it up: never runs.
	pending := createCount(t, s, ten, 5)
	if err := s.RequestCancel(ctx, ten, pending.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	startRunner(t, s, h, 2*time.Second, "a")
	waitStatus(t, s, pending, StatusCancelled, 10*time.Second)
	if len(h.startsOf(pending.ID)) != 0 {
		t.Error("a job cancelled before it started ran")
	}
	if _, ok := h.finishedJob(pending.ID); !ok {
		t.Error("Finished not called for the cancelled job")
	}

	// Cancelled while running: stops at its next checkpoint.
	running := createCount(t, s, ten, 100)
	select {
	case <-h.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the run never reached step 2")
	}
	if err := s.RequestCancel(ctx, ten, running.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	close(h.hold)
	got := waitStatus(t, s, running, StatusCancelled, 10*time.Second)
	if got.Processed != 3 {
		t.Errorf("cancelled job processed %d, want 3 (stopped at the first checkpoint after the request)", got.Processed)
	}
}

// Several processes share the work; each job is run exactly once.
func TestTwoRunnersRunEachJobOnce(t *testing.T) {
	s, _ := newStore(t)
	h := newCountHandler()
	startRunner(t, s, h, 2*time.Second, "a")
	startRunner(t, s, h, 2*time.Second, "b")
	ten := newTenant("two")
	var list []Job
	for range 6 {
		list = append(list, createCount(t, s, ten, 3))
	}
	for _, j := range list {
		waitStatus(t, s, j, StatusCompleted, 15*time.Second)
		if starts := h.startsOf(j.ID); len(starts) != 1 {
			t.Errorf("job %s ran %d times", j.ID, len(starts))
		}
	}
}

func TestLeaseIsExclusiveAndExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	ctx := context.Background()
	ls := NewLeases(env.rdb, 600*time.Millisecond)
	ten := newTenant("lease")
	a, ok, err := ls.Acquire(ctx, ten, "job_x", "a")
	if err != nil || !ok {
		t.Fatal("first acquire failed", err)
	}
	kctx, stopKeep := context.WithCancel(ctx)
	go a.Keep(kctx)
	time.Sleep(time.Second) // longer than the TTL: Keep renews it
	if _, ok, _ := ls.Acquire(ctx, ten, "job_x", "b"); ok {
		t.Fatal("a second holder got a renewed lease")
	}
	if !a.Valid() {
		t.Error("a kept lease is not valid")
	}
	stopKeep()
	time.Sleep(800 * time.Millisecond)
	if a.Valid() {
		t.Error("a lease not renewed for longer than its TTL still counts as valid")
	}
	b, ok, err := ls.Acquire(ctx, ten, "job_x", "b")
	if err != nil || !ok {
		t.Fatal("the expired lease could not be taken", err)
	}
	if err := a.renew(ctx); err == nil {
		t.Error("the old holder renewed a lease it lost")
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ls.Acquire(ctx, ten, "job_x", "c"); ok {
		t.Error("the old holder's release freed the new holder's lease")
	}
	_ = b.Release(ctx)
	if _, ok, _ := ls.Acquire(ctx, ten, "job_x", "c"); !ok {
		t.Error("released lease not free")
	}
}
