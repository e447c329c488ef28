package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/tenants"
)

var tenantSeq atomic.Int64

// newTenant creates a fresh tenant and returns its id.
func newTenant(t testing.TB, s *Store) string {
	t.Helper()
	id := fmt.Sprintf("t%d", tenantSeq.Add(1))
	if _, err := s.tenants.CreateTenant(context.Background(), id, "Tenant "+id, "test"); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestClientStore(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	ten := newTenant(t, s)

	if _, _, err := s.CreateClient(ctx, "no-such-tenant", "x", []Scope{ScopeUsageWrite}, tenants.Limits{}, "test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("client of missing tenant: err = %v", err)
	}
	for name, tc := range map[string]struct {
		scopes []Scope
		name   string
	}{
		"no scopes":     {nil, "x"},
		"unknown scope": {[]Scope{"usage:delete"}, "x"},
		"no name":       {[]Scope{ScopeUsageRead}, ""},
	} {
		if _, _, err := s.CreateClient(ctx, ten, tc.name, tc.scopes, tenants.Limits{}, "test"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	lim := tenants.Limits{IngestRequestsPerSecond: 7}
	id, secret, err := s.CreateClient(ctx, ten, "ingest bot", []Scope{ScopeUsageWrite, ScopeUsageRead, ScopeUsageWrite}, lim, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !validClientID(id) || len(secret) != 43 {
		t.Fatalf("client id %q / secret length %d", id, len(secret))
	}
	c, err := s.GetClient(ctx, ten, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Scopes, []Scope{ScopeUsageWrite, ScopeUsageRead}) || c.Limits != lim || c.Revoked || c.Name != "ingest bot" {
		t.Fatalf("client = %+v", c)
	}
	if c2, err := s.ClientByID(ctx, id); err != nil || c2.Tenant != ten {
		t.Fatalf("get by id alone: %+v, %v", c2, err)
	}
	if n, err := s.CountClients(ctx, ten); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}

	// Revocation appends a version; a second revoke changes nothing.
	r, err := s.RevokeClient(ctx, ten, id, "bob")
	if err != nil || !r.Revoked || r.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	if _, err := s.RevokeClient(ctx, ten, id, "bob"); err != nil {
		t.Fatal(err)
	}
	c, err = s.GetClient(ctx, ten, id)
	if err != nil || !c.Revoked || c.UpdatedBy != "bob" {
		t.Fatalf("after revoke: %+v, %v", c, err)
	}
	ids, err := s.RevokedClientIDs(ctx)
	if err != nil || !slices.Contains(ids, id) {
		t.Fatalf("revoked ids %v, %v", ids, err)
	}
	h, err := s.tenants.History(ctx, ten, EntityClient, id)
	if err != nil || len(h) != 2 {
		t.Fatalf("client history: %d entries, %v", len(h), err)
	}
	if n, _ := s.CountClients(ctx, ten); n != 1 {
		t.Fatalf("count after revoke = %d, want 1 (one client, two versions)", n)
	}
}

// TestSecretNeverStored reads the raw rows (all versions, no FINAL) of every
// auth table and checks the secret appears nowhere, and that what is stored
// is an argon2id hash that verifies.
func TestSecretNeverStored(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	ten := newTenant(t, s)
	id, secret, err := s.CreateClient(ctx, ten, "c", []Scope{ScopeAdmin}, tenants.Limits{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeClient(ctx, ten, id, "test"); err != nil {
		t.Fatal(err)
	}
	var hashes []string
	rows, err := shared.conn.Query(ctx, "SELECT secret_hash, name, updated_by FROM api_clients WHERE client_id = ?", id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h, n, u string
		if err := rows.Scan(&h, &n, &u); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
		if strings.Contains(h+n+u, secret) {
			t.Fatal("secret stored in api_clients")
		}
	}
	rows.Close()
	if len(hashes) != 2 {
		t.Fatalf("%d raw rows, want 2 versions", len(hashes))
	}
	for _, h := range hashes {
		if !strings.HasPrefix(h, "argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("stored hash %q is not argon2id", h)
		}
		if ok, err := verifySecret(secret, h); !ok || err != nil {
			t.Fatalf("stored hash does not verify the secret: %v", err)
		}
		if ok, _ := verifySecret(secret+"x", h); ok {
			t.Fatal("hash verifies a wrong secret")
		}
	}
	var changes []string
	if err := shared.conn.QueryRow(ctx, "SELECT groupArray(change) FROM audit_log WHERE entity_id = ?", id).Scan(&changes); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("%d audit rows, want 2", len(changes))
	}
	audit := strings.Join(changes, "\n")
	if strings.Contains(audit, secret) || strings.Contains(audit, "argon2id") {
		t.Fatalf("audit log holds the secret or its hash: %s", audit)
	}
}

func TestTenantIsolation(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a, b := newTenant(t, s), newTenant(t, s)
	var aIDs, bIDs []string
	for i := range 3 {
		id, _, err := s.CreateClient(ctx, a, fmt.Sprint("a", i), []Scope{ScopeUsageWrite}, tenants.Limits{}, "test")
		if err != nil {
			t.Fatal(err)
		}
		aIDs = append(aIDs, id)
	}
	for i := range 5 {
		id, _, err := s.CreateClient(ctx, b, fmt.Sprint("b", i), []Scope{ScopeUsageWrite}, tenants.Limits{}, "test")
		if err != nil {
			t.Fatal(err)
		}
		bIDs = append(bIDs, id)
	}
	slices.Sort(bIDs)

	// Keyset pages of 2 over B: exactly B's clients, in id order.
	var got []string
	after := ""
	for {
		page, err := s.ListClients(ctx, b, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			if c.Tenant != b {
				t.Fatalf("ListClients(%s) returned a client of %s", b, c.Tenant)
			}
			got = append(got, c.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, bIDs) {
		t.Fatalf("B's clients = %v, want %v", got, bIDs)
	}
	for _, id := range aIDs {
		if _, err := s.GetClient(ctx, b, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetClient(B, A's %s): err = %v, want ErrNotFound", id, err)
		}
		if _, err := s.RevokeClient(ctx, b, id, "mallory"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeClient(B, A's %s): err = %v, want ErrNotFound", id, err)
		}
	}
	if n, _ := s.CountClients(ctx, a); n != 3 {
		t.Fatalf("count A = %d", n)
	}
	// Every tenant-scoped operation refuses an empty tenant instead of
	// reading it as "any tenant" (GetClient did, before: a caller that lost
	// its tenant read another tenant's client).
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"ListClients", func() error { _, err := s.ListClients(ctx, "", "", 10); return err }},
		{"CountClients", func() error { _, err := s.CountClients(ctx, ""); return err }},
		{"GetClient", func() error { _, err := s.GetClient(ctx, "", aIDs[0]); return err }},
		{"RevokeClient", func() error { _, err := s.RevokeClient(ctx, "", aIDs[0], "mallory"); return err }},
	} {
		if err := tt.call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s without tenant: err = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestStoreNotMigrated(t *testing.T) {
	needClickHouse(t)
	ctx := context.Background()
	cfg := shared.cfg
	cfg.Database = "default"
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := NewStore(conn, tenants.NewStore(conn))
	if _, err := s.ClientByID(ctx, "kc_x"); !errors.Is(err, ErrNotMigrated) {
		t.Fatalf("GetClient: err = %v", err)
	}
}
