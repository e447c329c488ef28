package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
)

// Store errors; test with errors.Is.
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
	CreatedAt    time.Time     `json:"createdAt"`
	UpdatedAt    time.Time     `json:"updatedAt"`
	UpdatedBy    string        `json:"updatedBy"`
	Version      uint64        `json:"version"`
}

// MarshalJSON renders the dedupe window in seconds (dedupeWindowSeconds,
// omitted when it is the default).
func (t Tenant) MarshalJSON() ([]byte, error) {
	type plain Tenant
	return json.Marshal(struct {
		plain
		DedupeWindowSeconds int64 `json:"dedupeWindowSeconds,omitempty"`
	}{plain(t), int64(t.DedupeWindow / time.Second)})
}

// Client is the latest version of an API client. Its secret hash is kept
// unexported so that it never ends up in a response by accident.
type Client struct {
	Tenant    string    `json:"tenant"`
	ID        string    `json:"clientId"`
	Name      string    `json:"name"`
	Scopes    []Scope   `json:"scopes"`
	Limits    Limits    `json:"limits"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	UpdatedBy string    `json:"updatedBy"`
	Version   uint64    `json:"version"`

	secretHash string
}

// Store is the system of record for tenants and API clients, in ClickHouse.
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
	// Hash are the argon2id parameters for new client secrets
	// (DefaultHashParams; tests lower them).
	Hash HashParams
	// Now is the clock (clock.Now).
	Now func() time.Time
}

// NewStore returns a store over conn (a connection to Kakin's database).
func NewStore(conn driver.Conn) *Store {
	return &Store{conn: conn, Hash: DefaultHashParams, Now: clock.Now}
}

const (
	tenantCols = "tenant, name, ingest_events_per_second, ingest_requests_per_second, admin_requests_per_minute, " +
		"dedupe_window_seconds, created_at, updated_at, updated_by, deleted, version"
	clientCols = "tenant, client_id, name, secret_hash, scopes, ingest_events_per_second, ingest_requests_per_second, " +
		"admin_requests_per_minute, revoked, revoked_at, created_at, updated_at, updated_by, version"
	auditCols = "tenant, entity, entity_id, version, at, actor, change"
)

// Entity names in audit_log.
const (
	EntityTenant = "tenant"
	EntityClient = "api_client"
)

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

func checkLimits(l Limits) error {
	for _, v := range []int{l.IngestEventsPerSecond, l.IngestRequestsPerSecond, l.AdminRequestsPerMinute} {
		if v < 0 || v > math.MaxUint32 {
			return fmt.Errorf("%w: limit %d out of range 0..%d", ErrInvalid, v, uint32(math.MaxUint32))
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > 200 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: name must be 1-200 bytes of UTF-8", ErrInvalid)
	}
	return nil
}

func checkActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("%w: actor (who makes the change) is required", ErrInvalid)
	}
	return nil
}

// ---- tenants ----

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
	if err := checkActor(actor); err != nil {
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
	if err := checkLimits(l); err != nil {
		return Tenant{}, fmt.Errorf("set tenant limits: %w", err)
	}
	if err := checkActor(actor); err != nil {
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
// settings refresh.
func (s *Store) SetTenantDedupeWindow(ctx context.Context, id string, window time.Duration, actor string) (Tenant, error) {
	if window != 0 && (window < MinDedupeWindow || window > MaxDedupeWindow || window%time.Second != 0) {
		return Tenant{}, fmt.Errorf("set dedupe window: %w: %s must be 0 (default) or whole seconds from %s to %s",
			ErrInvalid, window, MinDedupeWindow, MaxDedupeWindow)
	}
	if err := checkActor(actor); err != nil {
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
	var ev, rq, adm, window uint32
	var deleted uint8
	err := rows.Scan(&t.ID, &t.Name, &ev, &rq, &adm, &window, &t.CreatedAt, &t.UpdatedAt, &t.UpdatedBy, &deleted, &t.Version)
	t.Limits = Limits{IngestEventsPerSecond: int(ev), IngestRequestsPerSecond: int(rq), AdminRequestsPerMinute: int(adm)}
	t.DedupeWindow = time.Duration(window) * time.Second
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	t.deleted = deleted != 0
	return t, err
}

// writeTenant appends version t to audit_log, then to tenants. The audit row
// goes first so that no state ever exists without its history; a failure in
// between leaves an audit row for a change that did not land (the caller
// gets the error).
func (s *Store) writeTenant(ctx context.Context, t Tenant, op string) error {
	if err := s.audit(ctx, t.ID, EntityTenant, t.ID, t.Version, t.UpdatedAt, t.UpdatedBy, op, t); err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO tenants ("+tenantCols+")")
	if err != nil {
		return err
	}
	if err := b.Append(t.ID, t.Name, uint32(t.Limits.IngestEventsPerSecond), uint32(t.Limits.IngestRequestsPerSecond),
		uint32(t.Limits.AdminRequestsPerMinute), uint32(t.DedupeWindow/time.Second), t.CreatedAt, t.UpdatedAt, t.UpdatedBy,
		uint8(0), t.Version); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

func (s *Store) audit(ctx context.Context, tenantID, entity, id string, version uint64, at time.Time, actor, op string, state any) error {
	change, err := json.Marshal(struct {
		Op    string `json:"op"`
		State any    `json:"state"`
	}{op, state})
	if err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO audit_log ("+auditCols+")")
	if err != nil {
		return err
	}
	if err := b.Append(tenantID, entity, id, version, at, actor, string(change)); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// AuditEntry is one row of audit_log.
type AuditEntry struct {
	Tenant   string          `json:"tenant"`
	Entity   string          `json:"entity"`
	EntityID string          `json:"entityId"`
	Version  uint64          `json:"version"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Change   json.RawMessage `json:"change"`
}

// History returns every recorded version of one entity of tenant, oldest first.
func (s *Store) History(ctx context.Context, tenantID, entity, id string) ([]AuditEntry, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+auditCols+" FROM audit_log WHERE tenant = ? AND entity = ? AND entity_id = ? ORDER BY version",
		tenantID, entity, id)
	if err != nil {
		return nil, wrap("history", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var change string
		if err := rows.Scan(&e.Tenant, &e.Entity, &e.EntityID, &e.Version, &e.At, &e.Actor, &change); err != nil {
			return nil, wrap("history", err)
		}
		e.At, e.Change = e.At.UTC(), json.RawMessage(change)
		out = append(out, e)
	}
	return out, wrap("history", rows.Err())
}

// ---- clients ----

// ClientIDPrefix starts every client id.
const ClientIDPrefix = "kc_"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newClientID returns "kc_" and 24 base32 characters (120 random bits).
func newClientID() (string, error) {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return ClientIDPrefix + idEncoding.EncodeToString(b[:]), nil
}

// validClientID reports whether id has the shape newClientID gives.
func validClientID(id string) bool {
	if len(id) != len(ClientIDPrefix)+24 || !strings.HasPrefix(id, ClientIDPrefix) {
		return false
	}
	for _, c := range id[len(ClientIDPrefix):] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// newSecret returns 32 random bytes, base64url without padding (43 chars).
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ParseScopes parses a comma- or space-separated scope list, rejecting
// unknown scopes and dropping duplicates.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !ValidScope(f) {
			return nil, fmt.Errorf("%w: unknown scope %q", ErrInvalid, f)
		}
		if !slices.Contains(out, Scope(f)) {
			out = append(out, Scope(f))
		}
	}
	return out, nil
}

func normalizeScopes(in []Scope) ([]Scope, error) {
	var out []Scope
	for _, s := range in {
		if !ValidScope(string(s)) {
			return nil, fmt.Errorf("%w: unknown scope %q", ErrInvalid, s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: a client needs at least one scope", ErrInvalid)
	}
	return out, nil
}

// CreateClient adds an API client to tenant (which must exist) and returns
// its id and secret. The secret is returned only here: the store keeps an
// argon2id hash of it.
func (s *Store) CreateClient(ctx context.Context, tenantID, name string, scopes []Scope, limits Limits, actor string) (clientID, secret string, err error) {
	if err := checkName(name); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if scopes, err = normalizeScopes(scopes); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if err := checkLimits(limits); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if err := checkActor(actor); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if _, err := s.GetTenant(ctx, tenantID); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if clientID, err = newClientID(); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if secret, err = newSecret(); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	hash, err := hashSecret(secret, s.Hash)
	if err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	now := s.now()
	c := Client{Tenant: tenantID, ID: clientID, Name: name, Scopes: scopes, Limits: limits,
		CreatedAt: now, UpdatedAt: now, UpdatedBy: actor, Version: s.nextVersion(0), secretHash: hash}
	if err := s.writeClient(ctx, c, "create"); err != nil {
		return "", "", wrap("create client", err)
	}
	return clientID, secret, nil
}

// GetClient returns client id of tenantID, or ErrNotFound (also when the
// client belongs to another tenant). tenantID is required: an empty tenant
// is refused with ErrInvalid rather than read as "any tenant", so a caller
// that lost its tenant fails closed. The token endpoint, which does not know
// the tenant yet, uses ClientByID.
func (s *Store) GetClient(ctx context.Context, tenantID, id string) (Client, error) {
	if tenantID == "" {
		return Client{}, fmt.Errorf("get client: %w: tenant required", ErrInvalid)
	}
	return s.clientByID(ctx, tenantID, id)
}

// ClientByID returns client id of whichever tenant holds it (client ids are
// globally unique), or ErrNotFound. Only the token endpoint should call it:
// it authenticates the client before anything of its tenant is used. The
// lookup scans the small api_clients table instead of using its primary key.
func (s *Store) ClientByID(ctx context.Context, id string) (Client, error) {
	return s.clientByID(ctx, "", id)
}

func (s *Store) clientByID(ctx context.Context, tenantID, id string) (Client, error) {
	c, found, err := s.getClient(ctx, tenantID, id)
	if err != nil {
		return Client{}, wrap("get client", err)
	}
	if !found {
		return Client{}, fmt.Errorf("client %s: %w", id, ErrNotFound)
	}
	return c, nil
}

func (s *Store) getClient(ctx context.Context, tenantID, id string) (Client, bool, error) {
	q, args := "SELECT "+clientCols+" FROM api_clients FINAL WHERE client_id = ?", []any{id}
	if tenantID != "" {
		q, args = "SELECT "+clientCols+" FROM api_clients FINAL WHERE tenant = ? AND client_id = ?", []any{tenantID, id}
	}
	rows, err := s.conn.Query(ctx, q+" LIMIT 1", args...)
	if err != nil {
		return Client{}, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return Client{}, false, rows.Err()
	}
	c, err := scanClient(rows)
	return c, err == nil, err
}

// MaxListClients is the most rows ListClients returns: a page of the largest
// allowed size (10,000) plus the one row that tells whether another follows.
const MaxListClients = 10001

// ListClients returns up to limit clients of tenantID (revoked ones too)
// with client_id > afterClientID, ordered by client_id.
func (s *Store) ListClients(ctx context.Context, tenantID, afterClientID string, limit int) ([]Client, error) {
	if tenantID == "" {
		return nil, fmt.Errorf("list clients: %w: tenant required", ErrInvalid)
	}
	if limit <= 0 || limit > MaxListClients {
		limit = MaxListClients
	}
	rows, err := s.conn.Query(ctx, "SELECT "+clientCols+" FROM api_clients FINAL WHERE tenant = ? AND client_id > ? ORDER BY client_id LIMIT ?",
		tenantID, afterClientID, limit)
	if err != nil {
		return nil, wrap("list clients", err)
	}
	defer rows.Close()
	out := []Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("list clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("list clients", rows.Err())
}

// CountClients returns how many clients tenantID has, revoked ones included.
func (s *Store) CountClients(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, fmt.Errorf("count clients: %w: tenant required", ErrInvalid)
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM api_clients FINAL WHERE tenant = ?", tenantID).Scan(&n); err != nil {
		return 0, wrap("count clients", err)
	}
	return int(n), nil
}

// RevokeClient revokes client id of tenantID for good: the token endpoint
// refuses it at once and every process refuses its tokens after its next
// revocation refresh. Revoking a revoked client changes nothing.
func (s *Store) RevokeClient(ctx context.Context, tenantID, id, actor string) (Client, error) {
	if tenantID == "" {
		return Client{}, fmt.Errorf("revoke client: %w: tenant required", ErrInvalid)
	}
	if err := checkActor(actor); err != nil {
		return Client{}, fmt.Errorf("revoke client: %w", err)
	}
	c, found, err := s.getClient(ctx, tenantID, id)
	if err != nil {
		return Client{}, wrap("revoke client", err)
	}
	if !found {
		return Client{}, fmt.Errorf("revoke client %s: %w", id, ErrNotFound)
	}
	if c.Revoked {
		return c, nil
	}
	now := s.now()
	c.Revoked, c.RevokedAt, c.UpdatedAt, c.UpdatedBy, c.Version = true, now, now, actor, s.nextVersion(c.Version)
	if err := s.writeClient(ctx, c, "revoke"); err != nil {
		return Client{}, wrap("revoke client", err)
	}
	return c, nil
}

// RevokedClientIDs lists every revoked client id, of all tenants. Revocation
// is never undone, so any version with revoked = 1 counts and the query
// needs no FINAL.
func (s *Store) RevokedClientIDs(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT client_id FROM api_clients WHERE revoked = 1")
	if err != nil {
		return nil, wrap("list revoked clients", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("list revoked clients", err)
		}
		out = append(out, id)
	}
	return out, wrap("list revoked clients", rows.Err())
}

func scanClient(rows driver.Rows) (Client, error) {
	var c Client
	var scopes []string
	var ev, rq, adm uint32
	var revoked uint8
	err := rows.Scan(&c.Tenant, &c.ID, &c.Name, &c.secretHash, &scopes, &ev, &rq, &adm, &revoked, &c.RevokedAt,
		&c.CreatedAt, &c.UpdatedAt, &c.UpdatedBy, &c.Version)
	c.Scopes = make([]Scope, len(scopes))
	for i, s := range scopes {
		c.Scopes[i] = Scope(s)
	}
	c.Limits = Limits{IngestEventsPerSecond: int(ev), IngestRequestsPerSecond: int(rq), AdminRequestsPerMinute: int(adm)}
	c.Revoked = revoked != 0
	if c.Revoked {
		c.RevokedAt = c.RevokedAt.UTC()
	} else {
		c.RevokedAt = time.Time{}
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

func (s *Store) writeClient(ctx context.Context, c Client, op string) error {
	// c marshals without its secret hash (unexported).
	if err := s.audit(ctx, c.Tenant, EntityClient, c.ID, c.Version, c.UpdatedAt, c.UpdatedBy, op, c); err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO api_clients ("+clientCols+")")
	if err != nil {
		return err
	}
	scopes := make([]string, len(c.Scopes))
	for i, sc := range c.Scopes {
		scopes[i] = string(sc)
	}
	revokedAt, revoked := time.Unix(0, 0).UTC(), uint8(0)
	if c.Revoked {
		revokedAt, revoked = c.RevokedAt, 1
	}
	if err := b.Append(c.Tenant, c.ID, c.Name, c.secretHash, scopes, uint32(c.Limits.IngestEventsPerSecond),
		uint32(c.Limits.IngestRequestsPerSecond), uint32(c.Limits.AdminRequestsPerMinute), revoked, revokedAt,
		c.CreatedAt, c.UpdatedAt, c.UpdatedBy, c.Version); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}
