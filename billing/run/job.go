package run

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/internal/jobs"
)

// Kind is the job kind of a billing run.
const Kind = "billing_run"

// Params are a billing run job's parameters.
type Params struct {
	Period   string `json:"period"`             // YYYY-MM
	Customer string `json:"customer,omitempty"` // empty: every customer
	Group    string `json:"group,omitempty"`    // only this customer group's members
}

type checkpoint struct {
	Watermark time.Time `json:"watermark"`
	StartedAt time.Time `json:"started_at"`
}

// Job runs billing runs as jobs (internal/jobs): the run's id is the job's.
type Job struct{ s *Service }

// NewJob returns the job handler.
func NewJob(s *Service) *Job { return &Job{s: s} }

// Run pins the ingest watermark at the first attempt (saved in the
// checkpoint, so a resumed run computes from exactly the same records),
// waits for the pipeline's stages to commit everything their topics held
// then (Options.Watermark; the offsets are stored with the run, and a
// timeout fails the job naming the lagging group and partition), then
// runs. A run is all or nothing per receivable, and rewriting what a
// crashed attempt wrote gives the same rows: it needs no finer checkpoint.
func (h *Job) Run(ctx context.Context, run *jobs.Run) (jobs.Outcome, error) {
	j := run.Job()
	var p Params
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return jobs.Outcome{Status: jobs.StatusFailed, Error: "unreadable parameters: " + err.Error()}, nil
	}
	var cp checkpoint
	if len(j.Checkpoint) > 0 {
		if err := json.Unmarshal(j.Checkpoint, &cp); err != nil {
			return jobs.Outcome{Status: jobs.StatusFailed, Error: "unreadable checkpoint: " + err.Error()}, nil
		}
	}
	if cp.Watermark.IsZero() {
		cp.Watermark = h.s.o.Now().UTC().Truncate(time.Second)
		cp.StartedAt = cp.Watermark
		b, _ := json.Marshal(cp)
		if err := run.Save(ctx, jobs.Counts{}, b); err != nil {
			return jobs.Outcome{}, err
		}
	}
	row := billingdb.Run{Tenant: j.Tenant, ID: j.ID, JobID: j.ID, Period: p.Period, Customer: p.Customer, Status: "running",
		Watermark: cp.Watermark, StartedAt: cp.StartedAt, Version: uint64(time.Now().UnixNano())}
	if err := h.s.o.Store.SaveRun(ctx, row); err != nil {
		return jobs.Outcome{}, err
	}
	// Every stage reaches the pipeline's end as of now (after the
	// watermark) before the run computes; a tenant without basic contracts
	// fails at once rather than after the wait.
	var pins []Pin
	var err error
	if c := h.s.o.Catalogues.Catalogue(j.Tenant); c == nil || len(c.BasicContracts) == 0 {
		err = ErrNoCatalogue
	} else {
		pins, err = h.s.waitStages(ctx)
	}
	if err != nil {
		if !errors.Is(err, ErrLagging) && !errors.Is(err, ErrNoCatalogue) {
			return jobs.Outcome{}, err
		}
		row.Status, row.Error = "failed", err.Error()
		row.FinishedAt, row.Version = h.s.o.Now().UTC(), uint64(time.Now().UnixNano())
		if serr := h.s.o.Store.SaveRun(ctx, row); serr != nil {
			return jobs.Outcome{}, serr
		}
		return jobs.Outcome{Status: jobs.StatusFailed, Error: err.Error()}, nil
	}
	row.Pins = pins
	res, err := h.s.Run(ctx, Request{Tenant: j.Tenant, RunID: j.ID, Period: p.Period, Customer: p.Customer,
		Group: p.Group, Actor: j.CreatedBy, Watermark: cp.Watermark})
	row.PeriodEnd, row.Receivables, row.Unchanged, row.Lines, row.Differences = res.PeriodEnd, res.Receivables, res.Unchanged, res.Lines, res.Differences
	row.FinishedAt, row.Version = h.s.o.Now().UTC(), uint64(time.Now().UnixNano())
	if err != nil {
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrNoCatalogue) && !errors.Is(err, ErrNoGroup) {
			return jobs.Outcome{}, err // a later attempt may get past it
		}
		row.Status, row.Error = "failed", err.Error()
		if serr := h.s.o.Store.SaveRun(ctx, row); serr != nil {
			return jobs.Outcome{}, serr
		}
		return jobs.Outcome{Status: jobs.StatusFailed, Error: err.Error()}, nil
	}
	row.Status = "completed"
	if err := h.s.o.Store.SaveRun(ctx, row); err != nil {
		return jobs.Outcome{}, err
	}
	n := res.Receivables + res.Unchanged + res.Frozen
	b, _ := json.Marshal(cp)
	if err := run.Save(ctx, jobs.Counts{Total: n, Processed: n, Accepted: res.Receivables + res.Unchanged}, b); err != nil {
		return jobs.Outcome{}, err
	}
	return jobs.Outcome{Status: jobs.StatusCompleted}, nil
}

// Finished frees nothing: a run holds no files.
func (h *Job) Finished(jobs.Job) {}
