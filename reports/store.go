package reports

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kakin-dev/kakin/internal/jobs"
)

// Delete records that the report was deleted (by a client id).
func (d *DB) Delete(ctx context.Context, tenant, id, by string) error {
	b, err := d.conn.PrepareBatch(ctx, "INSERT INTO report_deletions (tenant, report_id, deleted_at, deleted_by)")
	if err != nil {
		return fmt.Errorf("reports: prepare delete: %w", err)
	}
	if err := b.Append(tenant, id, time.Now().UTC(), by); err != nil {
		_ = b.Abort()
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("reports: delete %s: %w", id, err)
	}
	return nil
}

// Deleted reports whether the report was deleted.
func (d *DB) Deleted(ctx context.Context, tenant, id string) (bool, error) {
	var n uint64
	if err := d.conn.QueryRow(ctx, "SELECT count() FROM report_deletions WHERE tenant = ? AND report_id = ?", tenant, id).Scan(&n); err != nil {
		return false, fmt.Errorf("reports: deleted %s: %w", id, err)
	}
	return n > 0, nil
}

// DeletedIDs returns the tenant's deleted report ids.
func (d *DB) DeletedIDs(ctx context.Context, tenant string) (map[string]bool, error) {
	rows, err := d.conn.Query(ctx, "SELECT DISTINCT report_id FROM report_deletions WHERE tenant = ?", tenant)
	if err != nil {
		return nil, fmt.Errorf("reports: deleted reports: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// Report is a report as the API shows it: its job and, once completed, its
// file.
type Report struct {
	Job    jobs.Job
	Params Params
	Result Result
}

// Result is what a completed report's run left: kept in the job's
// checkpoint.
type Result struct {
	Phase    string `json:"phase"` // "", "days", "file": the phase done
	Version  uint64 `json:"version,omitempty"`
	Days     int    `json:"days_rows,omitempty"`
	Rows     int64  `json:"rows,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	FileName string `json:"file,omitempty"` // relative to the report directory
	// Customers are the group's members, fixed at the first run.
	Customers []string `json:"customers,omitempty"`
	GroupName string   `json:"group_name,omitempty"`
}

// FromJob reads a report job's parameters and result.
func FromJob(j jobs.Job) (Report, error) {
	r := Report{Job: j}
	if err := json.Unmarshal(j.Params, &r.Params); err != nil {
		return r, fmt.Errorf("reports: parameters of %s: %w", j.ID, err)
	}
	r.Params.Normalize()
	if len(j.Checkpoint) > 0 {
		if err := json.Unmarshal(j.Checkpoint, &r.Result); err != nil {
			return r, fmt.Errorf("reports: result of %s: %w", j.ID, err)
		}
	}
	return r, nil
}

// Reports lists the tenant's reports that were not deleted, newest first.
func Reports(ctx context.Context, store *jobs.Store, db *DB, tenant string) ([]Report, error) {
	deleted, err := db.DeletedIDs(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []Report
	var after *jobs.ListKey
	for {
		page, err := store.List(ctx, tenant, jobs.Filter{Kind: Kind}, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, j := range page {
			if deleted[j.ID] {
				continue
			}
			r, err := FromJob(j)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		if len(page) < 1000 {
			return out, nil
		}
		last := page[len(page)-1]
		after = &jobs.ListKey{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}

// Signer makes and checks the temporary download URLs of report files: an
// HMAC-SHA256 over tenant, report id and expiry with a server key, so that
// a URL works without a token until it expires, and only for that report.
type Signer struct {
	key []byte
	// TTL is how long a URL works (default 1 h).
	TTL time.Duration
}

// NewSigner returns a signer with key (e.g. auth.KeyRing.Derive("report
// downloads")).
func NewSigner(key []byte, ttl time.Duration) *Signer {
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &Signer{key: key, TTL: ttl}
}

// FilePath is the route of report files.
const FilePath = "/report-files/"

func (s *Signer) mac(tenant, id string, expires int64) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "kakin report download\x00%s\x00%s\x00%d", tenant, id, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// URL returns the report's download path and its expiry (now + TTL).
func (s *Signer) URL(tenant, id string, now time.Time) (string, time.Time) {
	exp := now.Add(s.TTL).Truncate(time.Second)
	e := exp.Unix()
	return FilePath + id + "?tenant=" + tenant + "&expires=" + strconv.FormatInt(e, 10) + "&signature=" + s.mac(tenant, id, e), exp
}

// Errors of Check.
var (
	ErrBadSignature = errors.New("the download URL is not valid")
	ErrExpired      = errors.New("the download URL has expired")
)

// Check verifies a download URL's parameters at now.
func (s *Signer) Check(tenant, id, expires, signature string, now time.Time) error {
	e, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	want := s.mac(tenant, id, e)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadSignature
	}
	if now.Unix() >= e {
		return ErrExpired
	}
	return nil
}

// fileName is the report file's name under the report directory.
func fileName(tenant, id string, f Format) string {
	return filepath.Join(tenant, id+"."+f.Ext())
}

// RemoveFile deletes the report's file (and a temporary one a run left).
func RemoveFile(dir, tenant, id string) error {
	var errs []error
	for _, f := range []Format{FormatCSV, FormatParquet} {
		p := filepath.Join(dir, fileName(tenant, id, f))
		for _, name := range []string{p, p + ".tmp"} {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
