// Package tenants is the tenant registry: who the tenants are, their rate
// limits and duplicate-detection (dedupe) windows, kept as versioned rows in
// ClickHouse with every version in the audit trail (audit_log), and each
// process's reloaded copy of the dedupe windows (Windows).
//
// A tenant's API clients are kept by internal/auth, which checks them
// against the registry, merges their limits with their tenant's and appends
// their versions to this package's audit trail. The tenant of a request
// travels in its context (internal/tenant).
package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
)

// Store errors; test with errors.Is. The client store (internal/auth)
// returns the same values, so one test covers a client and its tenant.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrInvalid     = errors.New("invalid")
	ErrNotMigrated = errors.New("auth tables missing in ClickHouse: run `kakin migrate` first")
)

// Tenant is the latest version of a tenant.
type Tenant struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Limits Limits `json:"limits"`
	// DedupeWindow is how long the tenant's event ids are remembered for
	// duplicate detection, and how old an event ingest accepts. Zero: the
	// process default (--dedupe-window).
	DedupeWindow time.Duration `json:"-"` // in JSON: dedupeWindowSeconds
	// BillingGrace is how long after a basic contract's billing period
	// ended its automatic billing run starts. Zero: the default (1 day,
	// billing/run.DefaultGrace).
	BillingGrace time.Duration `json:"-"` // in JSON: billingGraceSeconds
	CreatedAt    time.Time     `json:"createdAt"`
	UpdatedAt    time.Time     `json:"updatedAt"`
	UpdatedBy    string        `json:"updatedBy"`
	Version      uint64        `json:"version"`
}

// MarshalJSON renders the dedupe window and the billing grace in seconds
// (dedupeWindowSeconds, billingGraceSeconds; omitted when the default).
func (t Tenant) MarshalJSON() ([]byte, error) {
	type plain Tenant
	return json.Marshal(struct {
		plain
		DedupeWindowSeconds int64 `json:"dedupeWindowSeconds,omitempty"`
		BillingGraceSeconds int64 `json:"billingGraceSeconds,omitempty"`
	}{plain(t), int64(t.DedupeWindow / time.Second), int64(t.BillingGrace / time.Second)})
}

// Store is the system of record for tenants, in ClickHouse, and the audit
// trail of every entity of a tenant (the tenant itself, its API clients).
// Nothing is updated in place: every change appends a new version of the row
// (ReplacingMergeTree keeps the newest; reads use FINAL) and the same version
// to audit_log, which keeps every version for ever.
//
// ClickHouse has no transactions: "create if absent" is check-then-insert,
// and two admins changing the same row at once both succeed, the later
// version winning. The audit log shows both.
//
// The store migrates nothing; `kakin migrate` creates its tables. When they
// are missing, methods return errors wrapping ErrNotMigrated.
type Store struct {
	conn driver.Conn
	// Now is the clock (clock.Now).
	Now func() time.Time
}

// NewStore returns a store over conn (a connection to Kakin's database).
func NewStore(conn driver.Conn) *Store {
	return &Store{conn: conn, Now: clock.Now}
}

const tenantCols = "tenant, name, ingest_events_per_second, ingest_requests_per_second, admin_requests_per_minute, " +
	"dedupe_window_seconds, billing_grace_seconds, created_at, updated_at, updated_by, deleted, version"

// wrap adds op to err and maps ClickHouse's "table/database does not exist"
// to ErrNotMigrated.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 81) { // UNKNOWN_TABLE, UNKNOWN_DATABASE
		return fmt.Errorf("%s: %w (%v)", op, ErrNotMigrated, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Second) }

// nextVersion returns a version above cur: nanoseconds since the epoch, so
// versions also order writes made by different processes.
func (s *Store) nextVersion(cur uint64) uint64 {
	v := uint64(s.Now().UnixNano())
	if v <= cur {
		v = cur + 1
	}
	return v
}

func checkName(name string) error {
	if name == "" || len(name) > 200 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: name must be 1-200 bytes of UTF-8", ErrInvalid)
	}
	return nil
}

type tenantRow struct {
	Tenant
	deleted bool
}

// CreateTenant adds tenant id (schemas.ValidTenant) with a display name
// (id when empty). It fails with ErrExists when the tenant exists.
func (s *Store) CreateTenant(ctx context.Context, id, name, actor string) (Tenant, error) {
	if !schemas.ValidTenant(id) {
		return Tenant{}, fmt.Errorf("create tenant: %w: tenant id %q must be 1-64 of a-z, 0-9, -", ErrInvalid, id)
	}
	if name == "" {
		name = id
	}
	if err := checkName(name); err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	if err := CheckActor(actor); err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	cur, found, err := s.getTenant(ctx, id)
	if err != nil {
		return Tenant{}, wrap("create tenant", err)
	}
	if found && !cur.deleted {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", id, ErrExists)
	}
	now := s.now()
	t := Tenant{ID: id, Name: name, CreatedAt: now, UpdatedAt: now, UpdatedBy: actor, Version: s.nextVersion(cur.Version)}
	if err := s.writeTenant(ctx, t, "create"); err != nil {
		return Tenant{}, wrap("create tenant", err)
	}
	return t, nil
}

// GetTenant returns tenant id, or ErrNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	t, found, err := s.getTenant(ctx, id)
	if err != nil {
		return Tenant{}, wrap("get tenant", err)
	}
	if !found || t.deleted {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	return t.Tenant, nil
}

// ListTenants returns every tenant, ordered by id.
func (s *Store) ListTenants(ctx context.Context) ([]Tenant, error) {
	// Only the sorting key may be filtered next to FINAL: a filter on another
	// column can be applied before versions are collapsed (PREWHERE) and
	// resurrect an old version. So filter deleted in an outer query.
	rows, err := s.conn.Query(ctx, "SELECT "+tenantCols+" FROM (SELECT "+tenantCols+
		" FROM tenants FINAL) WHERE deleted = 0 ORDER BY tenant")
	if err != nil {
		return nil, wrap("list tenants", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, wrap("list tenants", err)
		}
		out = append(out, t.Tenant)
	}
	return out, wrap("list tenants", rows.Err())
}

// SetTenantLimits replaces tenant id's limits (zero fields: process default).
func (s *Store) SetTenantLimits(ctx context.Context, id string, l Limits, actor string) (Tenant, error) {
	if err := l.Validate(); err != nil {
		return Tenant{}, fmt.Errorf("set tenant limits: %w", err)
	}
	if err := CheckActor(actor); err != nil {
		return Tenant{}, fmt.Errorf("set tenant limits: %w", err)
	}
	cur, found, err := s.getTenant(ctx, id)
	if err != nil {
		return Tenant{}, wrap("set tenant limits", err)
	}
	if !found || cur.deleted {
		return Tenant{}, fmt.Errorf("set tenant limits: tenant %s: %w", id, ErrNotFound)
	}
	t := cur.Tenant
	t.Limits, t.UpdatedAt, t.UpdatedBy, t.Version = l, s.now(), actor, s.nextVersion(cur.Version)
	if err := s.writeTenant(ctx, t, "set_limits"); err != nil {
		return Tenant{}, wrap("set tenant limits", err)
	}
	return t, nil
}

// MinDedupeWindow and MaxDedupeWindow bound a tenant's dedupe window.
const (
	MinDedupeWindow = 24 * time.Hour
	MaxDedupeWindow = 400 * 24 * time.Hour
)

// SetTenantDedupeWindow sets tenant id's duplicate-detection window, in
// whole seconds between MinDedupeWindow and MaxDedupeWindow; 0 returns the
// tenant to the process default. Processes apply it within their tenant
// settings refresh (Windows).
func (s *Store) SetTenantDedupeWindow(ctx context.Context, id string, window time.Duration, actor string) (Tenant, error) {
	if window != 0 && (window < MinDedupeWindow || window > MaxDedupeWindow || window%time.Second != 0) {
		return Tenant{}, fmt.Errorf("set dedupe window: %w: %s must be 0 (default) or whole seconds from %s to %s",
			ErrInvalid, window, MinDedupeWindow, MaxDedupeWindow)
	}
	if err := CheckActor(actor); err != nil {
		return Tenant{}, fmt.Errorf("set dedupe window: %w", err)
	}
	cur, found, err := s.getTenant(ctx, id)
	if err != nil {
		return Tenant{}, wrap("set dedupe window", err)
	}
	if !found || cur.deleted {
		return Tenant{}, fmt.Errorf("set dedupe window: tenant %s: %w", id, ErrNotFound)
	}
	t := cur.Tenant
	t.DedupeWindow, t.UpdatedAt, t.UpdatedBy, t.Version = window, s.now(), actor, s.nextVersion(cur.Version)
	if err := s.writeTenant(ctx, t, "set_dedupe_window"); err != nil {
		return Tenant{}, wrap("set dedupe window", err)
	}
	return t, nil
}

// MaxBillingGrace bounds a tenant's billing grace.
const MaxBillingGrace = 60 * 24 * time.Hour

// SetTenantBillingGrace sets how long after a basic contract's billing
// period ended tenant id's automatic billing run starts: whole seconds up to
// MaxBillingGrace; 0 returns the tenant to the default (1 day).
func (s *Store) SetTenantBillingGrace(ctx context.Context, id string, grace time.Duration, actor string) (Tenant, error) {
	if grace < 0 || grace > MaxBillingGrace || grace%time.Second != 0 {
		return Tenant{}, fmt.Errorf("set billing grace: %w: %s must be 0 (default) or whole seconds up to %s",
			ErrInvalid, grace, MaxBillingGrace)
	}
	if err := CheckActor(actor); err != nil {
		return Tenant{}, fmt.Errorf("set billing grace: %w", err)
	}
	cur, found, err := s.getTenant(ctx, id)
	if err != nil {
		return Tenant{}, wrap("set billing grace", err)
	}
	if !found || cur.deleted {
		return Tenant{}, fmt.Errorf("set billing grace: tenant %s: %w", id, ErrNotFound)
	}
	t := cur.Tenant
	t.BillingGrace, t.UpdatedAt, t.UpdatedBy, t.Version = grace, s.now(), actor, s.nextVersion(cur.Version)
	if err := s.writeTenant(ctx, t, "set_billing_grace"); err != nil {
		return Tenant{}, wrap("set billing grace", err)
	}
	return t, nil
}

// BillingGrace returns tenant id's billing grace as set (0: the default,
// also for a tenant not in the registry: one known only to the catalogue).
func (s *Store) BillingGrace(ctx context.Context, id string) (time.Duration, error) {
	t, found, err := s.getTenant(ctx, id)
	if err != nil {
		return 0, wrap("billing grace", err)
	}
	if !found || t.deleted {
		return 0, nil
	}
	return t.BillingGrace, nil
}

// DedupeWindows returns the dedupe window of every tenant that has one of
// its own (the others use the process default).
func (s *Store) DedupeWindows(ctx context.Context) (map[string]time.Duration, error) {
	// Filter in an outer query: a filter on a non-key column next to FINAL
	// could see an old version (see ListTenants).
	rows, err := s.conn.Query(ctx, "SELECT tenant, dedupe_window_seconds FROM (SELECT tenant, dedupe_window_seconds, deleted"+
		" FROM tenants FINAL) WHERE deleted = 0 AND dedupe_window_seconds > 0")
	if err != nil {
		return nil, wrap("dedupe windows", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var id string
		var secs uint32
		if err := rows.Scan(&id, &secs); err != nil {
			return nil, wrap("dedupe windows", err)
		}
		out[id] = time.Duration(secs) * time.Second
	}
	return out, wrap("dedupe windows", rows.Err())
}

func (s *Store) getTenant(ctx context.Context, id string) (tenantRow, bool, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+tenantCols+" FROM tenants FINAL WHERE tenant = ?", id)
	if err != nil {
		return tenantRow{}, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return tenantRow{}, false, rows.Err()
	}
	t, err := scanTenant(rows)
	return t, err == nil, err
}

func scanTenant(rows driver.Rows) (tenantRow, error) {
	var t tenantRow
	var ev, rq, adm, window, grace uint32
	var deleted uint8
	err := rows.Scan(&t.ID, &t.Name, &ev, &rq, &adm, &window, &grace, &t.CreatedAt, &t.UpdatedAt, &t.UpdatedBy, &deleted, &t.Version)
	t.Limits = Limits{IngestEventsPerSecond: int(ev), IngestRequestsPerSecond: int(rq), AdminRequestsPerMinute: int(adm)}
	t.DedupeWindow = time.Duration(window) * time.Second
	t.BillingGrace = time.Duration(grace) * time.Second
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	t.deleted = deleted != 0
	return t, err
}

// writeTenant appends version t to audit_log, then to tenants. The audit row
// goes first so that no state ever exists without its history; a failure in
// between leaves an audit row for a change that did not land (the caller
// gets the error).
func (s *Store) writeTenant(ctx context.Context, t Tenant, op string) error {
	if err := s.Audit(ctx, Change{Tenant: t.ID, Entity: EntityTenant, EntityID: t.ID, Version: t.Version,
		At: t.UpdatedAt, Actor: t.UpdatedBy, Op: op, State: t}); err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO tenants ("+tenantCols+")")
	if err != nil {
		return err
	}
	if err := b.Append(t.ID, t.Name, uint32(t.Limits.IngestEventsPerSecond), uint32(t.Limits.IngestRequestsPerSecond),
		uint32(t.Limits.AdminRequestsPerMinute), uint32(t.DedupeWindow/time.Second), uint32(t.BillingGrace/time.Second), t.CreatedAt, t.UpdatedAt, t.UpdatedBy,
		uint8(0), t.Version); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}
