package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrNotFound means the tenant has no job with that id.
var ErrNotFound = errors.New("no such job")

// Store keeps jobs in ClickHouse.
type Store struct {
	conn driver.Conn
}

// NewStore returns the job store on conn (a database migrated with 0004).
func NewStore(conn driver.Conn) *Store { return &Store{conn: conn} }

const jobColumns = `tenant, job_id, kind, status, params, checkpoint, total, processed, accepted, rejected,
	error, created_by, created_at, updated_at, finished_at, worker, attempts, epoch, version`

// write appends j as a new row (j.Version must be higher than the last one).
func (s *Store) write(ctx context.Context, j Job) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO jobs ("+jobColumns+")")
	if err != nil {
		return fmt.Errorf("jobs: prepare insert: %w", err)
	}
	params, checkpoint := string(j.Params), string(j.Checkpoint)
	if params == "" {
		params = "{}"
	}
	if err := batch.Append(j.Tenant, j.ID, j.Kind, string(j.Status), params, checkpoint,
		j.Total, j.Processed, j.Accepted, j.Rejected, j.Error, j.CreatedBy,
		j.CreatedAt.UTC(), j.UpdatedAt.UTC(), dateTime(j.FinishedAt), j.Worker, j.Attempts, j.Epoch, j.Version); err != nil {
		batch.Abort()
		return fmt.Errorf("jobs: append: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("jobs: insert %s: %w", j.ID, err)
	}
	return nil
}

// dateTime maps the zero time to the epoch, which DateTime can hold.
func dateTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// Create stores a new job as pending, version 1 of epoch 0. The caller sets
// Tenant, ID, Kind, Params, CreatedBy and, optionally, Checkpoint and Total.
func (s *Store) Create(ctx context.Context, j Job) (Job, error) {
	now := time.Now().UTC().Truncate(time.Second)
	j.Status, j.CreatedAt, j.UpdatedAt, j.FinishedAt = StatusPending, now, now, time.Time{}
	j.Epoch, j.Version, j.Worker, j.Attempts = 0, 1, "", 0
	if err := s.write(ctx, j); err != nil {
		return Job{}, err
	}
	return j, nil
}

func scanJob(rows interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var status, params, checkpoint string
	err := rows.Scan(&j.Tenant, &j.ID, &j.Kind, &status, &params, &checkpoint, &j.Total, &j.Processed, &j.Accepted,
		&j.Rejected, &j.Error, &j.CreatedBy, &j.CreatedAt, &j.UpdatedAt, &j.FinishedAt, &j.Worker, &j.Attempts, &j.Epoch, &j.Version)
	if err != nil {
		return Job{}, err
	}
	j.Status, j.Params = Status(status), json.RawMessage(params)
	if checkpoint != "" {
		j.Checkpoint = json.RawMessage(checkpoint)
	}
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	if j.FinishedAt.Unix() <= 0 {
		j.FinishedAt = time.Time{}
	} else {
		j.FinishedAt = j.FinishedAt.UTC()
	}
	return j, nil
}

// Get returns the tenant's job id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant, id string) (Job, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+jobColumns+" FROM jobs FINAL WHERE tenant = ? AND job_id = ?", tenant, id)
	if err != nil {
		return Job{}, fmt.Errorf("jobs: get %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Job{}, fmt.Errorf("jobs: get %s: %w", id, err)
		}
		return Job{}, ErrNotFound
	}
	return scanJob(rows)
}

// Filter narrows a list; empty fields do not filter.
type Filter struct {
	Kind   string
	Status Status
}

func (f Filter) where(tenant string) (string, []any) {
	conds, args := []string{"tenant = ?"}, []any{tenant}
	if f.Kind != "" {
		conds, args = append(conds, "kind = ?"), append(args, f.Kind)
	}
	if f.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, string(f.Status))
	}
	return strings.Join(conds, " AND "), args
}

// ListKey is the position of a job in a list: newest first, then by id.
type ListKey struct {
	CreatedAt time.Time
	ID        string
}

// List returns up to limit of the tenant's jobs after the key after (nil:
// from the newest), newest first.
func (s *Store) List(ctx context.Context, tenant string, f Filter, after *ListKey, limit int) ([]Job, error) {
	where, args := f.where(tenant)
	if after != nil {
		where += " AND (created_at < ? OR (created_at = ? AND job_id < ?))"
		args = append(args, after.CreatedAt.UTC(), after.CreatedAt.UTC(), after.ID)
	}
	rows, err := s.conn.Query(ctx, "SELECT "+jobColumns+" FROM jobs FINAL WHERE "+where+
		" ORDER BY created_at DESC, job_id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	defer rows.Close()
	out := []Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Count returns how many of the tenant's jobs match f.
func (s *Store) Count(ctx context.Context, tenant string, f Filter) (uint64, error) {
	where, args := f.where(tenant)
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM jobs FINAL WHERE "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("jobs: count: %w", err)
	}
	return n, nil
}

// Unfinished returns every tenant's jobs of the given kinds that are not in
// a final state, oldest first: what a worker may have to start or resume.
func (s *Store) Unfinished(ctx context.Context, kinds []string) ([]Job, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	marks, args := make([]string, len(kinds)), make([]any, len(kinds))
	for i, k := range kinds {
		marks[i], args[i] = "?", k
	}
	rows, err := s.conn.Query(ctx, "SELECT "+jobColumns+" FROM jobs FINAL WHERE status IN ('pending', 'processing') AND kind IN ("+
		strings.Join(marks, ", ")+") ORDER BY created_at, job_id", args...)
	if err != nil {
		return nil, fmt.Errorf("jobs: unfinished: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// AddErrors appends rows to the job's error report. A line's problems must
// come in one call, in a fixed order: their position numbers them, so that
// writing them again (a resumed run) replaces rather than adds.
func (s *Store) AddErrors(ctx context.Context, tenant, id string, errs []LineError) error {
	if len(errs) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO job_errors (tenant, job_id, line, seq, record_id, field, reason)")
	if err != nil {
		return fmt.Errorf("jobs: prepare error insert: %w", err)
	}
	var seq uint16
	for i, e := range errs {
		if i > 0 && errs[i-1].Line == e.Line {
			seq++
		} else {
			seq = 0
		}
		if err := batch.Append(tenant, id, e.Line, seq, e.RecordID, e.Field, e.Reason); err != nil {
			batch.Abort()
			return fmt.Errorf("jobs: append error row: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("jobs: insert error rows of %s: %w", id, err)
	}
	return nil
}

// Errors calls fn with each row of the job's error report in line order,
// streaming them from ClickHouse; it stops at the first error fn returns.
// limit > 0 stops after that many rows.
func (s *Store) Errors(ctx context.Context, tenant, id string, limit int, fn func(LineError) error) error {
	q := "SELECT line, record_id, field, reason FROM job_errors FINAL WHERE tenant = ? AND job_id = ? ORDER BY line, seq"
	args := []any{tenant, id}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("jobs: error report of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e LineError
		if err := rows.Scan(&e.Line, &e.RecordID, &e.Field, &e.Reason); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// RequestCancel records that by asked to cancel the job.
func (s *Store) RequestCancel(ctx context.Context, tenant, id, by string) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO job_cancels (tenant, job_id, requested_at, requested_by)")
	if err != nil {
		return fmt.Errorf("jobs: prepare cancel: %w", err)
	}
	if err := batch.Append(tenant, id, time.Now().UTC(), by); err != nil {
		batch.Abort()
		return err
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("jobs: cancel %s: %w", id, err)
	}
	return nil
}

// CancelRequested reports whether cancelling the job was asked for.
func (s *Store) CancelRequested(ctx context.Context, tenant, id string) (bool, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM job_cancels WHERE tenant = ? AND job_id = ?", tenant, id).Scan(&n); err != nil {
		return false, fmt.Errorf("jobs: cancel requested %s: %w", id, err)
	}
	return n > 0, nil
}
