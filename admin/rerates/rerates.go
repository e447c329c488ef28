// Package rerates runs re-rating as an asynchronous job: POST /v1/rerate
// creates a job for a tenant's billing period (optionally one customer), and
// the job publishes one re-rate request per customer to usage.accepted,
// keyed like the customer's usage, where the rater recomputes the period in
// order with the customer's records (rater.Stage.rerate).
package rerates

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// Producer writes messages, acknowledged: stream.Producer, the one writer
// interface.
type Producer = stream.Producer

// Kind is the job kind of a re-rate.
const Kind = "rerate"

// Params are a re-rate job's parameters.
type Params struct {
	Period   string `json:"period"`             // YYYY-MM
	Customer string `json:"customer,omitempty"` // empty: every customer with usage in the period
}

type checkpoint struct {
	Customers []string `json:"customers,omitempty"` // fixed at the first run
	Listed    bool     `json:"listed"`
	Next      int      `json:"next"` // index of the next customer to publish
}

// Customers lists the customers with stored usage in a time range.
type Customers interface {
	Customers(ctx context.Context, tenant string, from, to time.Time) ([]string, error)
}

// Handler publishes the re-rate requests of a job.
type Handler struct {
	customers Customers
	producer  Producer
}

// NewHandler returns the job handler.
func NewHandler(c Customers, p Producer) *Handler { return &Handler{customers: c, producer: p} }

// Window is the time range whose usage can fall into a billing period
// labelled period (the months before and of it, with a day's margin for
// time zones).
func Window(period pricing.PeriodID) (time.Time, time.Time) {
	y, m := period.Year(), period.Month()
	return time.Date(y, m-1, 1, 0, 0, 0, 0, time.UTC).Add(-26 * time.Hour),
		time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Add(26 * time.Hour)
}

const publishBatch = 500

// Run lists the customers once, then publishes their requests in batches,
// saving the position after each batch; a resumed run continues there (a
// request published twice is harmless: the rater skips a re-rate it already
// applied).
func (h *Handler) Run(ctx context.Context, run *jobs.Run) (jobs.Outcome, error) {
	j := run.Job()
	var p Params
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return jobs.Outcome{Status: jobs.StatusFailed, Error: "unreadable parameters: " + err.Error()}, nil
	}
	pid, err := pricing.ParsePeriod(p.Period)
	if err != nil {
		return jobs.Outcome{Status: jobs.StatusFailed, Error: err.Error()}, nil
	}
	var cp checkpoint
	if len(j.Checkpoint) > 0 {
		if err := json.Unmarshal(j.Checkpoint, &cp); err != nil {
			return jobs.Outcome{Status: jobs.StatusFailed, Error: "unreadable checkpoint: " + err.Error()}, nil
		}
	}
	if !cp.Listed {
		if p.Customer != "" {
			cp.Customers = []string{p.Customer}
		} else {
			from, to := Window(pid)
			if cp.Customers, err = h.customers.Customers(ctx, j.Tenant, from, to); err != nil {
				return jobs.Outcome{}, err
			}
		}
		cp.Listed = true
		if err := h.save(ctx, run, cp); err != nil {
			return jobs.Outcome{}, err
		}
	}
	for cp.Next < len(cp.Customers) {
		if cancel, err := run.CancelRequested(ctx); err == nil && cancel {
			return jobs.Outcome{Status: jobs.StatusCancelled}, nil
		}
		end := min(cp.Next+publishBatch, len(cp.Customers))
		msgs := make([]kafka.Message, 0, end-cp.Next)
		for _, c := range cp.Customers[cp.Next:end] {
			r := schemas.Rerate{Tenant: j.Tenant, Customer: c, Period: p.Period, Job: j.ID, Actor: j.CreatedBy, RequestedAt: j.CreatedAt}
			v, err := json.Marshal(&r)
			if err != nil {
				return jobs.Outcome{}, err
			}
			msgs = append(msgs, kafka.Message{Topic: schemas.TopicAccepted, Key: r.Key(), Value: v, Headers: schemas.RerateHeaders()})
		}
		if err := h.producer.WriteMessages(ctx, msgs...); err != nil {
			return jobs.Outcome{}, fmt.Errorf("publish re-rate requests: %w", err)
		}
		cp.Next = end
		if err := h.save(ctx, run, cp); err != nil {
			return jobs.Outcome{}, err
		}
	}
	return jobs.Outcome{Status: jobs.StatusCompleted}, nil
}

func (h *Handler) save(ctx context.Context, run *jobs.Run, cp checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	n := uint64(len(cp.Customers))
	return run.Save(ctx, jobs.Counts{Total: n, Processed: uint64(cp.Next), Accepted: uint64(cp.Next)}, b)
}

// Finished frees nothing: a re-rate holds no files.
func (h *Handler) Finished(jobs.Job) {}

// Requests serves POST /v1/rerate.
type Requests struct {
	store  *jobs.Store
	wake   func()
	closed Closed
}

// Closed gives a tenant's closed billing periods (corrections.Periods).
type Closed interface {
	Closed(ctx context.Context, tenant string) (map[string]bool, error)
}

// WithPeriods makes the route refuse a re-rate of a closed period (409
// period_closed): a closed period's streamed charges stay as they were
// billed; what a re-rate would change there is booked by the next open
// period's billing run as adjustment lines (billing/run), which recomputes
// the closed period from the stored records with the catalogue as it is.
func (q *Requests) WithPeriods(c Closed) *Requests {
	q.closed = c
	return q
}

// NewRequests returns the POST /v1/rerate handler.
func NewRequests(store *jobs.Store, wake func()) *Requests {
	return &Requests{store: store, wake: wake}
}

// ServeHTTP creates the job and answers 202 with it (Location: the job).
func (q *Requests) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	if !httpapi.KnownQuery(w, r) {
		return
	}
	var p Params
	if !httpapi.DecodeStrict(w, r, &p, false) {
		return
	}
	var errs []httpapi.FieldError
	if _, err := pricing.ParsePeriod(p.Period); err != nil {
		errs = append(errs, httpapi.FieldError{Field: "period", Reason: "must be YYYY-MM"})
	}
	if p.Customer != "" && !schemas.ValidCode(p.Customer) {
		errs = append(errs, httpapi.FieldError{Field: "customer", Reason: "is not a customer id"})
	}
	if len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "the re-rate request is invalid", errs...)
		return
	}
	if q.closed != nil {
		closed, err := q.closed.Closed(r.Context(), ten)
		if err != nil {
			httpapi.RetryAfter(w, 5*time.Second)
			httpapi.WriteProblem(w, http.StatusServiceUnavailable, "storage_unavailable", "the closed periods could not be read; retry")
			return
		}
		if closed[p.Period] {
			httpapi.WriteProblem(w, http.StatusConflict, "period_closed",
				fmt.Sprintf("the billing period %s is closed: its receivables are final and are not re-rated; "+
					"what changed is booked as adjustment lines by the next open period's billing run", p.Period))
			return
		}
	}
	principal, _ := auth.FromContext(r.Context())
	pj, _ := json.Marshal(p)
	j, err := q.store.Create(r.Context(), jobs.Job{Tenant: ten, ID: jobs.NewID(), Kind: Kind, Params: pj, CreatedBy: principal.ClientID})
	if err != nil {
		httpapi.RetryAfter(w, 5*time.Second)
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "storage_unavailable", "the re-rate job could not be created; retry")
		return
	}
	q.wake()
	w.Header().Set("Location", jobs.Path(j.ID))
	httpapi.WriteJSON(w, http.StatusAccepted, jobs.NewView(j, false))
}
