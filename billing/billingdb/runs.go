package billingdb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Run is one billing run as stored.
type Run struct {
	Tenant    string    `json:"-"`
	ID        string    `json:"id"`
	JobID     string    `json:"job_id"`
	Period    string    `json:"period"`
	Customer  string    `json:"customer,omitempty"`
	Status    string    `json:"status"` // running, completed, failed
	PeriodEnd time.Time `json:"period_end"`
	Watermark time.Time `json:"watermark"`
	// Pins are the end offsets of the pipeline's topics the stages had
	// committed before the run computed (none when the run did not wait).
	Pins        []Pin     `json:"stage_offsets,omitempty"`
	Receivables uint64    `json:"receivables"`
	Unchanged   uint64    `json:"unchanged"`
	Lines       uint64    `json:"lines"`
	Differences uint64    `json:"differences"`
	Error       string    `json:"error,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	Version     uint64    `json:"-"`
}

// Pin is one partition's end offset a pipeline stage's consumer group had
// committed before a run computed.
type Pin struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

const runColumns = `tenant, run_id, job_id, period, customer, status, period_end, watermark, stage_offsets, receivables,
	unchanged, lines, differences, error, started_at, finished_at, version`

// SaveRun writes a run's row (the newest version wins).
func (s *Store) SaveRun(ctx context.Context, r Run) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO billing_runs ("+runColumns+")")
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	pins := ""
	if len(r.Pins) > 0 {
		p, _ := json.Marshal(r.Pins)
		pins = string(p)
	}
	if err := b.Append(r.Tenant, r.ID, r.JobID, r.Period, r.Customer, r.Status, chTime(r.PeriodEnd), chTime(r.Watermark), pins,
		r.Receivables, r.Unchanged, r.Lines, r.Differences, r.Error, chTime(r.StartedAt), chTime(r.FinishedAt), r.Version); err != nil {
		_ = b.Abort()
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// GetRun returns a tenant's run, or nil.
func (s *Store) GetRun(ctx context.Context, tenant, id string) (*Run, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+runColumns+" FROM billing_runs FINAL WHERE tenant = ? AND run_id = ?", tenant, id)
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var r Run
	var pins string
	if err := rows.Scan(&r.Tenant, &r.ID, &r.JobID, &r.Period, &r.Customer, &r.Status, &r.PeriodEnd, &r.Watermark, &pins,
		&r.Receivables, &r.Unchanged, &r.Lines, &r.Differences, &r.Error, &r.StartedAt, &r.FinishedAt, &r.Version); err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	if pins != "" {
		if err := json.Unmarshal([]byte(pins), &r.Pins); err != nil {
			return nil, fmt.Errorf("read run %s: stage offsets: %w", id, err)
		}
	}
	r.PeriodEnd, r.Watermark, r.StartedAt = r.PeriodEnd.UTC(), r.Watermark.UTC(), r.StartedAt.UTC()
	if r.FinishedAt.Unix() == 0 {
		r.FinishedAt = time.Time{}
	} else {
		r.FinishedAt = r.FinishedAt.UTC()
	}
	return &r, nil
}

// Reconciliation outcomes per charge key.
const (
	Match        = "match"
	Differ       = "differ"
	OnlyInStream = "only_in_stream"
	OnlyInBatch  = "only_in_batch"
)

// Diff is one charge key of a run's reconciliation.
type Diff struct {
	Customer     string          `json:"customer"`
	ChargePeriod string          `json:"charge_period"`
	Item         string          `json:"item"`
	Outcome      string          `json:"outcome"`
	Batch        decimal.Decimal `json:"batch_amount"`
	Stream       decimal.Decimal `json:"stream_amount"`
}

// WriteReconciliation stores a run's comparison (a resumed run rewrites the
// same keys).
func (s *Store) WriteReconciliation(ctx context.Context, tenant, runID string, ds []Diff) error {
	for start := 0; start < len(ds); start += insertChunk {
		b, err := s.conn.PrepareBatch(ctx, `INSERT INTO billing_reconciliation
			(tenant, run_id, customer, charge_period, item, outcome, batch_amount, stream_amount)`)
		if err != nil {
			return fmt.Errorf("save reconciliation of %s: %w", runID, err)
		}
		for _, d := range ds[start:min(start+insertChunk, len(ds))] {
			if err := b.Append(tenant, runID, d.Customer, d.ChargePeriod, d.Item, d.Outcome, d.Batch, d.Stream); err != nil {
				_ = b.Abort()
				return fmt.Errorf("save reconciliation of %s: %w", runID, err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("save reconciliation of %s: %w", runID, err)
		}
	}
	return nil
}

// Reconciliation calls fn for each key of a run's comparison, ordered by
// customer, period and item; only the outcome given when not empty.
func (s *Store) Reconciliation(ctx context.Context, tenant, runID, outcome string, fn func(Diff) error) error {
	q := `SELECT customer, charge_period, item, outcome, batch_amount, stream_amount FROM billing_reconciliation FINAL
		WHERE tenant = ? AND run_id = ?`
	args := []any{tenant, runID}
	if outcome != "" {
		q += " AND outcome = ?"
		args = append(args, outcome)
	}
	rows, err := s.conn.Query(ctx, q+" ORDER BY customer, charge_period, item", args...)
	if err != nil {
		return fmt.Errorf("read reconciliation of %s: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Diff
		if err := rows.Scan(&d.Customer, &d.ChargePeriod, &d.Item, &d.Outcome, &d.Batch, &d.Stream); err != nil {
			return fmt.Errorf("read reconciliation of %s: %w", runID, err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PeriodEvent is one close or reopen of a tenant's period (audit).
type PeriodEvent struct {
	Period   string    `json:"period"`
	Action   string    `json:"action"` // close or reopen
	Reason   string    `json:"reason,omitempty"`
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
	FirstSeq uint64    `json:"first_seq,omitempty"`
	LastSeq  uint64    `json:"last_seq,omitempty"`
}

// AddPeriodEvent appends a close or reopen to the audit table.
func (s *Store) AddPeriodEvent(ctx context.Context, tenant string, e PeriodEvent) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO billing_period_events (tenant, period, action, reason, actor, at, first_seq, last_seq)")
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", e.Action, e.Period, err)
	}
	if err := b.Append(tenant, e.Period, e.Action, e.Reason, e.Actor, chTime(e.At), e.FirstSeq, e.LastSeq); err != nil {
		_ = b.Abort()
		return fmt.Errorf("record %s of %s: %w", e.Action, e.Period, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record %s of %s: %w", e.Action, e.Period, err)
	}
	return nil
}

// PeriodEvents returns a tenant's closes and reopens, oldest first.
func (s *Store) PeriodEvents(ctx context.Context, tenant string) ([]PeriodEvent, error) {
	rows, err := s.conn.Query(ctx, `SELECT period, action, reason, actor, at, first_seq, last_seq FROM billing_period_events
		WHERE tenant = ? ORDER BY at, period, action`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read period events: %w", err)
	}
	defer rows.Close()
	var out []PeriodEvent
	for rows.Next() {
		var e PeriodEvent
		if err := rows.Scan(&e.Period, &e.Action, &e.Reason, &e.Actor, &e.At, &e.FirstSeq, &e.LastSeq); err != nil {
			return nil, fmt.Errorf("read period events: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// NumberFormat returns a tenant's invoice number format, or "" when none is set.
func (s *Store) NumberFormat(ctx context.Context, tenant string) (string, error) {
	rows, err := s.conn.Query(ctx, "SELECT number_format FROM billing_settings FINAL WHERE tenant = ?", tenant)
	if err != nil {
		return "", fmt.Errorf("read number format: %w", err)
	}
	defer rows.Close()
	var f string
	if rows.Next() {
		if err := rows.Scan(&f); err != nil {
			return "", fmt.Errorf("read number format: %w", err)
		}
	}
	return f, rows.Err()
}

// SetNumberFormat stores a tenant's invoice number format (validated by the caller).
func (s *Store) SetNumberFormat(ctx context.Context, tenant, format, actor string, now time.Time) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO billing_settings (tenant, number_format, changed_by, version)")
	if err != nil {
		return fmt.Errorf("set number format: %w", err)
	}
	if err := b.Append(tenant, format, actor, uint64(now.UnixNano())); err != nil {
		_ = b.Abort()
		return fmt.Errorf("set number format: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("set number format: %w", err)
	}
	return nil
}
