// Package corrections changes the status of stored usage records: invalidation
// (無効化) stops a record from counting toward charges, cancellation
// (取り消し) of the invalidation makes it count again. Both are validated
// here and then published as correction events to usage.accepted, keyed like
// the record, so the rater applies them in order with the customer's usage
// and ClickHouse totals change exactly once. A record of a closed billing
// period (a tenant-level marker, see Periods) is corrected too, but its
// closed period's receivables stay final: the next open period's billing run
// books the change as a signed adjustment line carrying both periods
// (billing/run), and the answer names the closed periods so affected.
package corrections

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Producer writes messages to Kafka, acknowledged: stream.Producer, the one
// writer interface.
type Producer = stream.Producer

// DefaultMaxBulk caps the records one bulk request may change; a filter that
// matches more is refused (422) and must be narrowed.
const DefaultMaxBulk = 10000

// publishChunk is the number of correction messages per Kafka write.
const publishChunk = 1000

// Service validates and publishes corrections.
type Service struct {
	records  *usagedb.Records
	periods  *Periods
	producer Producer
	// MaxBulk caps the records one bulk request may change.
	MaxBulk  int
	now      func() time.Time
	outcomes *prometheus.CounterVec
}

// NewService returns the correction service; it registers its metrics with reg.
func NewService(records *usagedb.Records, periods *Periods, p Producer, reg prometheus.Registerer) *Service {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kakin_usage_corrections_total",
		Help: "Usage records per correction request outcome: published, unchanged (already in the target status), refused_pending, refused_status, too_many.",
	}, []string{"action", "outcome"})
	reg.MustRegister(c)
	return &Service{records: records, periods: periods, producer: p, MaxBulk: DefaultMaxBulk, now: clock.Now, outcomes: c}
}

// Refusal is a correction the records' state does not allow. Nothing of the
// request was published.
type Refusal struct {
	Status     int // HTTP status: 404, 409 or 422
	Code       string
	Detail     string
	RetryAfter bool // the state may change by itself (a record still being priced)
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Detail }

// Change is one published correction.
type Change struct {
	ID         string `json:"id"`
	Generation uint64 `json:"generation"`
}

// Result is what a correction request did.
type Result struct {
	Action      string
	Matched     int      // records the request named
	Changed     []Change // corrections published
	Unchanged   int      // records already in the target status
	RequestedAt time.Time
	// Adjusted are the closed billing periods the published corrections
	// touch: their receivables do not change, the next open period's
	// billing run books the difference as adjustment lines.
	Adjusted []string
}

// Request names the correction to make.
type Request struct {
	Tenant string
	Action string // schemas.ActionInvalidate or schemas.ActionCancel
	Reason string
	Actor  string
}

// One corrects the tenant's record id. Unlike a bulk request it refuses a
// record already in the target status (409), so a caller learns that its
// request changed nothing.
func (s *Service) One(ctx context.Context, req Request, id string) (*Result, error) {
	evs, err := s.records.Events(ctx, req.Tenant, usagedb.RecordFilter{ID: id}, 1)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, &Refusal{Status: http.StatusNotFound, Code: "not_found", Detail: "no usage record with this id"}
	}
	res, err := s.apply(ctx, req, evs)
	if err != nil {
		return nil, err
	}
	if res.Unchanged > 0 {
		s.outcomes.WithLabelValues(req.Action, "refused_status").Inc()
		if req.Action == schemas.ActionInvalidate {
			return nil, &Refusal{Status: http.StatusConflict, Code: "usage_already_invalid",
				Detail: "the record is already invalid; cancel the invalidation to make it count again"}
		}
		return nil, &Refusal{Status: http.StatusConflict, Code: "usage_not_invalid",
			Detail: "the record is not invalid, so there is no invalidation to cancel"}
	}
	return res, nil
}

// Bulk corrects every stored record of the tenant that f matches (at most
// MaxBulk; more is refused with 422). Records already in the target status
// are left as they are and counted. Either every other record is published or
// the request is refused as a whole (a closed period, a record still being
// priced).
func (s *Service) Bulk(ctx context.Context, req Request, f usagedb.RecordFilter) (*Result, error) {
	evs, err := s.records.Events(ctx, req.Tenant, f, s.MaxBulk+1)
	if err != nil {
		return nil, err
	}
	if len(evs) > s.MaxBulk {
		s.outcomes.WithLabelValues(req.Action, "too_many").Inc()
		return nil, &Refusal{Status: http.StatusUnprocessableEntity, Code: "too_many_matches",
			Detail: fmt.Sprintf("the filter matches more than %d records; narrow it (customer, element, contract, time ranges) and send several requests", s.MaxBulk)}
	}
	res, err := s.apply(ctx, req, evs)
	if err == nil {
		s.outcomes.WithLabelValues(req.Action, "unchanged").Add(float64(res.Unchanged))
	}
	return res, err
}

// apply checks each record's state and publishes the corrections. The new
// generation is the record's current one plus one, read from usage_status:
// two requests racing on one record both publish the same generation, and so
// the same correction line ids, which count once.
func (s *Service) apply(ctx context.Context, req Request, evs []schemas.UsageEvent) (*Result, error) {
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	states, err := s.records.States(ctx, req.Tenant, ids)
	if err != nil {
		return nil, err
	}
	closed, err := s.periods.Closed(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	res := &Result{Action: req.Action, Matched: len(evs), RequestedAt: now}
	var pending []string
	closedPeriods := map[string]bool{}
	var msgs []kafka.Message
	for i := range evs {
		ev := &evs[i]
		st := states[ev.ID]
		invalid := st.Generation%2 == 1
		if invalid == (req.Action == schemas.ActionInvalidate) {
			res.Unchanged++
			continue
		}
		if !st.Rated && !st.Unrated && !invalid {
			pending = append(pending, ev.ID)
			continue
		}
		for _, p := range st.Periods {
			if closed[p] {
				closedPeriods[p] = true
			}
		}
		c := schemas.Correction{Action: req.Action, Generation: st.Generation + 1, Event: *ev,
			Reason: req.Reason, Actor: req.Actor, RequestedAt: now}
		value, err := json.Marshal(&c)
		if err != nil {
			return nil, fmt.Errorf("encode correction: %w", err)
		}
		msgs = append(msgs, kafka.Message{Topic: schemas.TopicAccepted, Key: ev.PartitionKey(), Value: value,
			Headers: schemas.CorrectionHeaders(), Time: now})
		res.Changed = append(res.Changed, Change{ID: ev.ID, Generation: c.Generation})
	}
	if len(pending) > 0 {
		s.outcomes.WithLabelValues(req.Action, "refused_pending").Add(float64(len(pending)))
		return nil, &Refusal{Status: http.StatusConflict, Code: "usage_pending", RetryAfter: true,
			Detail: fmt.Sprintf("%d record(s) are still being priced (e.g. %s); retry in a moment", len(pending), pending[0])}
	}
	for start := 0; start < len(msgs); start += publishChunk {
		if err := s.producer.WriteMessages(ctx, msgs[start:min(start+publishChunk, len(msgs))]...); err != nil {
			// Some corrections may be out; a retry republishes the rest (and
			// the published ones again, with the same generation: harmless).
			return nil, fmt.Errorf("publish corrections: %w", err)
		}
	}
	s.outcomes.WithLabelValues(req.Action, "published").Add(float64(len(msgs)))
	res.Adjusted = sortedKeys(closedPeriods)
	return res, nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
