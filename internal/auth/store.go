package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/tenants"
)

// Store errors; test with errors.Is. They are the tenant registry's values
// (a client of a missing tenant fails with ErrNotFound either way).
var (
	ErrNotFound    = tenants.ErrNotFound
	ErrInvalid     = tenants.ErrInvalid
	ErrNotMigrated = tenants.ErrNotMigrated
)

// Client is the latest version of an API client. Its secret hash is kept
// unexported so that it never ends up in a response by accident.
type Client struct {
	Tenant    string         `json:"tenant"`
	ID        string         `json:"clientId"`
	Name      string         `json:"name"`
	Scopes    []Scope        `json:"scopes"`
	Limits    tenants.Limits `json:"limits"`
	Revoked   bool           `json:"revoked"`
	RevokedAt time.Time      `json:"revokedAt,omitzero"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	UpdatedBy string         `json:"updatedBy"`
	Version   uint64         `json:"version"`

	secretHash string
}

// Store is the system of record for API clients, in ClickHouse; their
// tenants are in the tenant registry (tenants.Store). Nothing is updated in
// place: every change appends a new version of the row (ReplacingMergeTree
// keeps the newest; reads use FINAL) and the same version to the registry's
// audit trail (audit_log), which keeps every version for ever.
//
// ClickHouse has no transactions: two admins changing the same client at
// once both succeed, the later version winning. The audit log shows both.
//
// The store migrates nothing; `kakin migrate` creates its tables. When they
// are missing, methods return errors wrapping ErrNotMigrated.
type Store struct {
	conn    driver.Conn
	tenants *tenants.Store
	// Hash are the argon2id parameters for new client secrets
	// (DefaultHashParams; tests lower them).
	Hash HashParams
	// Now is the clock (clock.Now).
	Now func() time.Time
}

// NewStore returns a store over conn (a connection to Kakin's database)
// whose clients belong to the tenants of registry.
func NewStore(conn driver.Conn, registry *tenants.Store) *Store {
	return &Store{conn: conn, tenants: registry, Hash: DefaultHashParams, Now: clock.Now}
}

const clientCols = "tenant, client_id, name, secret_hash, scopes, ingest_events_per_second, ingest_requests_per_second, " +
	"admin_requests_per_minute, revoked, revoked_at, created_at, updated_at, updated_by, version"

// EntityClient is the entity name of API clients in the audit trail
// (tenants.Store.History).
const EntityClient = "api_client"

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
func (s *Store) CreateClient(ctx context.Context, tenantID, name string, scopes []Scope, limits tenants.Limits, actor string) (clientID, secret string, err error) {
	if err := checkName(name); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if scopes, err = normalizeScopes(scopes); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if err := limits.Validate(); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if err := tenants.CheckActor(actor); err != nil {
		return "", "", fmt.Errorf("create client: %w", err)
	}
	if _, err := s.tenants.GetTenant(ctx, tenantID); err != nil {
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
	if err := tenants.CheckActor(actor); err != nil {
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
	c.Limits = tenants.Limits{IngestEventsPerSecond: int(ev), IngestRequestsPerSecond: int(rq), AdminRequestsPerMinute: int(adm)}
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
	if err := s.tenants.Audit(ctx, tenants.Change{Tenant: c.Tenant, Entity: EntityClient, EntityID: c.ID, Version: c.Version,
		At: c.UpdatedAt, Actor: c.UpdatedBy, Op: op, State: c}); err != nil {
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
