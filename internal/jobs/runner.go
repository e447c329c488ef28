package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Handler does the work of one kind of job.
type Handler interface {
	// Run does the job, or resumes it from run.Job().Checkpoint, saving
	// progress with run.Save as it goes. It returns the final outcome, or an
	// error when it stopped without one: ctx ended (shutdown, or the lease
	// was lost) or something failed that a later run may get past. It must
	// return soon after ctx ends.
	Run(ctx context.Context, run *Run) (Outcome, error)
	// Finished is called once the job has reached a final status, whoever
	// ended it, to free what the job held (an import's spooled file).
	Finished(job Job)
}

// Outcome is how a run ended the job.
type Outcome struct {
	Status Status // completed, failed or cancelled
	Error  string // why, when failed
}

// Options configure a Runner.
type Options struct {
	Store *Store
	Redis redis.UniversalClient
	// LeaseTTL is how long a job's lease lasts without a heartbeat; a job of
	// a crashed process is taken over after about this long. Default 15 s.
	LeaseTTL time.Duration
	// ScanInterval is how often unfinished jobs are looked for. Default
	// LeaseTTL/3.
	ScanInterval time.Duration
	// Workers is how many jobs this process runs at once. Default 2.
	Workers int
	// MaxAttempts is how many runs may end without a clean handover before
	// the job is failed. Default 5.
	MaxAttempts uint32
	// Owner names this process in leases and rows; default host:pid.
	Owner      string
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Runner finds unfinished jobs of the kinds it has handlers for, takes their
// leases and runs them.
type Runner struct {
	o        Options
	leases   *Leases
	handlers map[string]Handler
	metrics  *metrics
	wake     chan struct{}

	mu      sync.Mutex
	active  map[string]bool      // tenant/id of the jobs this process runs
	backoff map[string]time.Time // tenant/id -> not before (after a failed run)
}

// NewRunner returns a runner; register handlers before calling Run.
func NewRunner(o Options) *Runner {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = o.LeaseTTL / 3
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return &Runner{o: o, leases: NewLeases(o.Redis, o.LeaseTTL), handlers: map[string]Handler{},
		metrics: newMetrics(o.Registerer), wake: make(chan struct{}, 1),
		active: map[string]bool{}, backoff: map[string]time.Time{}}
}

// Register makes the runner run jobs of kind with h.
func (r *Runner) Register(kind string, h Handler) { r.handlers[kind] = h }

// Owner is the name this runner takes leases under.
func (r *Runner) Owner() string { return r.o.Owner }

// Wake makes the runner look for work now (after a job was created).
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run scans for work until ctx ends, then waits for its running jobs to
// stop at their next checkpoint and hand over.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(r.o.ScanInterval)
	defer tick.Stop()
	for {
		if err := r.scan(ctx, &wg); err != nil && ctx.Err() == nil {
			r.o.Log.Warn("jobs: scan failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-r.wake:
		}
	}
}

func key(j Job) string { return j.Tenant + "/" + j.ID }

// scan starts the unfinished jobs whose lease it can take, while it has
// free workers.
func (r *Runner) scan(ctx context.Context, wg *sync.WaitGroup) error {
	kinds := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		kinds = append(kinds, k)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := r.o.Store.Unfinished(sctx, kinds)
	if err != nil {
		return err
	}
	r.metrics.unfinished.Set(float64(len(list)))
	r.mu.Lock()
	for k, until := range r.backoff {
		if time.Now().After(until) {
			delete(r.backoff, k)
		}
	}
	r.mu.Unlock()
	for _, j := range list {
		r.mu.Lock()
		busy := len(r.active) >= r.o.Workers
		skip := r.active[key(j)] || time.Now().Before(r.backoff[key(j)])
		r.mu.Unlock()
		if busy {
			return nil
		}
		if skip {
			continue
		}
		lease, ok, err := r.leases.Acquire(sctx, j.Tenant, j.ID, r.o.Owner)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		// Read again under the lease: the list may predate the end of the
		// previous holder's run.
		cur, err := r.o.Store.Get(sctx, j.Tenant, j.ID)
		if err != nil || cur.Status.Final() {
			_ = lease.Release(context.WithoutCancel(ctx))
			if err != nil {
				return err
			}
			continue
		}
		r.mu.Lock()
		r.active[key(cur)] = true
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.execute(ctx, lease, cur)
			r.mu.Lock()
			delete(r.active, key(cur))
			r.mu.Unlock()
			r.Wake() // a worker is free
		}()
	}
	return nil
}

// Run is one run of a job by the holder of its lease.
type Run struct {
	r     *Runner
	lease *Lease
	epoch uint32

	mu  sync.Mutex
	job Job
}

// Job returns the job as last saved.
func (run *Run) Job() Job {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.job
}

// errNotHolder means the run's lease is no longer certainly held, so it
// must not write.
var errNotHolder = errors.New("jobs: lease not held; not writing")

// update writes a new row of the job changed by change, if the lease is held.
func (run *Run) update(ctx context.Context, change func(j *Job)) error {
	if !run.lease.Valid() {
		return errNotHolder
	}
	run.mu.Lock()
	j := run.job
	run.mu.Unlock()
	change(&j)
	j.Epoch = run.epoch
	j.Version = j.nextVersion(run.epoch)
	j.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	if err := run.r.o.Store.write(ctx, j); err != nil {
		return err
	}
	run.mu.Lock()
	run.job = j
	run.mu.Unlock()
	return nil
}

// Save records progress: the counts and the checkpoint a later run resumes
// from. Everything the checkpoint covers must be durable before Save.
func (run *Run) Save(ctx context.Context, c Counts, checkpoint json.RawMessage) error {
	return run.update(ctx, func(j *Job) { j.Counts, j.Checkpoint = c, checkpoint })
}

// AddErrors appends rows to the job's error report (before the Save that
// covers their lines).
func (run *Run) AddErrors(ctx context.Context, errs []LineError) error {
	if !run.lease.Valid() {
		return errNotHolder
	}
	j := run.Job()
	return run.r.o.Store.AddErrors(ctx, j.Tenant, j.ID, errs)
}

// CancelRequested reports whether someone asked to cancel the job.
func (run *Run) CancelRequested(ctx context.Context) (bool, error) {
	j := run.Job()
	return run.r.o.Store.CancelRequested(ctx, j.Tenant, j.ID)
}

// execute runs one job under its lease.
func (r *Runner) execute(ctx context.Context, lease *Lease, j Job) {
	log := r.o.Log.With("job", j.ID, "tenant", j.Tenant, "kind", j.Kind)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go lease.Keep(ctx)
	go func() {
		select {
		case <-lease.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	bg := context.WithoutCancel(ctx)
	defer func() {
		rctx, rcancel := context.WithTimeout(bg, 5*time.Second)
		defer rcancel()
		_ = lease.Release(rctx)
	}()

	run := &Run{r: r, lease: lease, epoch: j.Epoch + 1, job: j}
	h := r.handlers[j.Kind]
	resumed := j.Worker != ""
	if resumed {
		r.metrics.takeovers.WithLabelValues(j.Kind).Inc()
	}
	// Start: a run that found the previous holder's name still in the row
	// follows a run that ended without handing over.
	err := run.update(ctx, func(j *Job) {
		if j.Worker != "" {
			j.Attempts++
		}
		j.Status, j.Worker = StatusProcessing, r.o.Owner
	})
	if err != nil {
		log.Warn("jobs: could not start", "err", err)
		r.setBackoff(j)
		return
	}
	j = run.Job()
	if j.Attempts >= r.o.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d runs that ended without finishing (crash or lost lease)", j.Attempts)
		if j.Error != "" {
			reason += "; last error: " + j.Error
		}
		r.finish(bg, run, h, Outcome{Status: StatusFailed, Error: reason}, log)
		return
	}
	if cancelled, err := run.CancelRequested(ctx); err == nil && cancelled {
		r.finish(bg, run, h, Outcome{Status: StatusCancelled}, log)
		return
	}
	log.Info("jobs: running", "resumed", resumed, "attempts", j.Attempts, "processed", j.Processed)
	r.metrics.running.WithLabelValues(j.Kind).Inc()
	start := time.Now()
	out, err := h.Run(ctx, run)
	r.metrics.running.WithLabelValues(j.Kind).Dec()
	r.metrics.runSeconds.WithLabelValues(j.Kind).Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		r.finish(bg, run, h, out, log)
	case ctx.Err() != nil && lease.Valid():
		// Shutdown: hand over cleanly, so the next run is not counted as an attempt.
		wctx, wcancel := context.WithTimeout(bg, 10*time.Second)
		defer wcancel()
		if err := run.update(wctx, func(j *Job) { j.Worker = "" }); err != nil {
			log.Warn("jobs: handover not recorded", "err", err)
		}
		log.Info("jobs: stopped for shutdown; another run resumes it", "processed", run.Job().Processed)
	case ctx.Err() != nil:
		r.metrics.leaseLost.WithLabelValues(j.Kind).Inc()
		log.Warn("jobs: lease lost; stopped", "err", err)
	default:
		log.Warn("jobs: run failed; will retry", "err", err)
		wctx, wcancel := context.WithTimeout(bg, 10*time.Second)
		defer wcancel()
		_ = run.update(wctx, func(j *Job) { j.Error = err.Error() })
		r.setBackoff(j)
	}
}

func (r *Runner) setBackoff(j Job) {
	r.mu.Lock()
	r.backoff[key(j)] = time.Now().Add(r.o.LeaseTTL)
	r.mu.Unlock()
}

// finish writes the final row and lets the handler clean up.
func (r *Runner) finish(ctx context.Context, run *Run, h Handler, out Outcome, log *slog.Logger) {
	if !out.Status.Final() {
		out = Outcome{Status: StatusFailed, Error: fmt.Sprintf("internal error: handler ended with status %q", out.Status)}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := run.update(wctx, func(j *Job) {
		j.Status, j.Error, j.Worker = out.Status, out.Error, ""
		j.FinishedAt = time.Now().UTC().Truncate(time.Second)
	})
	if err != nil {
		log.Warn("jobs: final state not recorded; a later run ends it again", "status", out.Status, "err", err)
		r.setBackoff(run.Job())
		return
	}
	j := run.Job()
	r.metrics.finished.WithLabelValues(j.Kind, string(j.Status)).Inc()
	log.Info("jobs: finished", "status", j.Status, "processed", j.Processed, "accepted", j.Accepted, "rejected", j.Rejected, "error", j.Error)
	h.Finished(j)
}
