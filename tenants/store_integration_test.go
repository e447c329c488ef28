package tenants

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/chdb"
)

var tenantSeq atomic.Int64

// newTenant creates a fresh tenant and returns its id.
func newTenant(t testing.TB, s *Store) string {
	t.Helper()
	id := fmt.Sprintf("t%d", tenantSeq.Add(1))
	if _, err := s.CreateTenant(context.Background(), id, "Tenant "+id, "test"); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTenantStore(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	id := newTenant(t, s)

	if _, err := s.CreateTenant(ctx, id, "again", "test"); !errors.Is(err, ErrExists) {
		t.Fatalf("create existing tenant: err = %v, want ErrExists", err)
	}
	for _, bad := range []string{"", "Upper", "a_b", "a/b", strings.Repeat("a", 65)} {
		if _, err := s.CreateTenant(ctx, bad, "", "test"); !errors.Is(err, ErrInvalid) {
			t.Errorf("create tenant %q: err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.GetTenant(ctx, "no-such-tenant"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing tenant: err = %v", err)
	}
	lim := Limits{IngestEventsPerSecond: 500, AdminRequestsPerMinute: 60}
	if _, err := s.SetTenantLimits(ctx, id, lim, "alice"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTenant(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Limits != lim || got.UpdatedBy != "alice" || got.Name != "Tenant "+id {
		t.Fatalf("tenant after set limits = %+v", got)
	}
	if _, err := s.SetTenantLimits(ctx, id, Limits{IngestEventsPerSecond: -1}, "alice"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative limit: err = %v", err)
	}
	list, err := s.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range list {
		if x.ID == id {
			n++
			if x.Limits != lim {
				t.Errorf("listed tenant has old limits %+v", x.Limits)
			}
		}
	}
	if n != 1 {
		t.Fatalf("tenant listed %d times, want once (FINAL)", n)
	}
	// Every version is in the audit log, oldest first.
	h, err := s.History(ctx, id, EntityTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || !strings.Contains(string(h[0].Change), `"op":"create"`) ||
		!strings.Contains(string(h[1].Change), `"op":"set_limits"`) || h[1].Actor != "alice" || h[0].Version >= h[1].Version {
		t.Fatalf("history = %+v", h)
	}
}

// A tenant's dedupe window is a versioned setting: set, kept by later
// changes of other settings, listed for the window cache, back to the
// default with 0, and recorded in the audit log.
func TestTenantDedupeWindow(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	id, other := newTenant(t, s), newTenant(t, s)
	const window = 40 * 24 * time.Hour
	for _, bad := range []time.Duration{-time.Hour, time.Hour, MaxDedupeWindow + time.Second, 30*24*time.Hour + time.Millisecond} {
		if _, err := s.SetTenantDedupeWindow(ctx, id, bad, "alice"); !errors.Is(err, ErrInvalid) {
			t.Errorf("window %v: err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.SetTenantDedupeWindow(ctx, "no-such-tenant", window, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("window of a missing tenant: err = %v", err)
	}
	if _, err := s.SetTenantDedupeWindow(ctx, id, window, "alice"); err != nil {
		t.Fatal(err)
	}
	// Another change writes a new version that keeps the window.
	if _, err := s.SetTenantLimits(ctx, id, Limits{AdminRequestsPerMinute: 5}, "bob"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTenant(ctx, id)
	if err != nil || got.DedupeWindow != window || got.Limits.AdminRequestsPerMinute != 5 {
		t.Fatalf("tenant = %+v, %v; want the window %v kept", got, err, window)
	}
	windows, err := s.DedupeWindows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if windows[id] != window {
		t.Errorf("DedupeWindows()[%s] = %v, want %v", id, windows[id], window)
	}
	if _, listed := windows[other]; listed {
		t.Errorf("tenant %s without a window of its own is listed: %v", other, windows[other])
	}
	if _, err := s.SetTenantDedupeWindow(ctx, id, 0, "alice"); err != nil {
		t.Fatal(err)
	}
	if windows, err = s.DedupeWindows(ctx); err != nil || windows[id] != 0 {
		t.Errorf("after setting 0: DedupeWindows()[%s] = %v, %v; want it gone", id, windows[id], err)
	}
	h, err := s.History(ctx, id, EntityTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4 || !strings.Contains(string(h[1].Change), `"op":"set_dedupe_window"`) ||
		!strings.Contains(string(h[1].Change), `"dedupeWindowSeconds":3456000`) {
		t.Fatalf("history = %+v", h)
	}
}

// A tenant's billing grace is a versioned setting like its dedupe window:
// refused out of range, kept by later changes of other settings, 0 for a
// tenant without one (or unknown to the registry), audited.
func TestTenantBillingGrace(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	id := newTenant(t, s)
	const grace = 3 * 24 * time.Hour
	for _, bad := range []time.Duration{-time.Hour, MaxBillingGrace + time.Second, time.Hour + time.Millisecond} {
		if _, err := s.SetTenantBillingGrace(ctx, id, bad, "alice"); !errors.Is(err, ErrInvalid) {
			t.Errorf("grace %v: err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.SetTenantBillingGrace(ctx, "no-such-tenant", grace, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("grace of a missing tenant: err = %v", err)
	}
	if g, err := s.BillingGrace(ctx, id); err != nil || g != 0 {
		t.Errorf("grace before setting one: %v %v, want 0", g, err)
	}
	if _, err := s.SetTenantBillingGrace(ctx, id, grace, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTenantLimits(ctx, id, Limits{AdminRequestsPerMinute: 5}, "bob"); err != nil {
		t.Fatal(err)
	}
	if g, err := s.BillingGrace(ctx, id); err != nil || g != grace {
		t.Errorf("grace after another change: %v %v, want %v", g, err, grace)
	}
	if g, err := s.BillingGrace(ctx, "no-such-tenant"); err != nil || g != 0 {
		t.Errorf("grace of a tenant not in the registry: %v %v, want 0", g, err)
	}
	h, err := s.History(ctx, id, EntityTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || !strings.Contains(string(h[1].Change), `"op":"set_billing_grace"`) ||
		!strings.Contains(string(h[1].Change), `"billingGraceSeconds":259200`) {
		t.Fatalf("history = %+v", h)
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
	s := NewStore(conn)
	if _, err := s.ListTenants(ctx); !errors.Is(err, ErrNotMigrated) {
		t.Fatalf("ListTenants on an unmigrated database: err = %v, want ErrNotMigrated", err)
	}
}
