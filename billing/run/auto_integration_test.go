package run

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/tenants"
)

// The automatic run is due a grace time after each basic contract's period
// ended (b1: month end in Tokyo, so November ends 2026-11-30 15:00 UTC), by
// the business clock; a tenant's own grace replaces the default day; a
// closed period is not run.
func TestAutoRunIsDueAfterTheGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	var grace time.Duration
	a := NewAuto(e.svc, AutoOptions{Jobs: jobs.NewStore(e.conn), Tenants: func() []string { return []string{"acme", "beta"} },
		Grace: func(context.Context, string) (time.Duration, error) { return grace, nil }})
	tests := []struct {
		name   string
		now    time.Time
		grace  time.Duration
		closed string
		want   string
	}{
		{"a second before the default day", time.Date(2026, 12, 1, 14, 59, 59, 0, time.UTC), 0, "", "[2026-10]"},
		{"the default day after November", time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC), 0, "", "[2026-11]"},
		{"a tenant's 2 hours", time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC), 2 * time.Hour, "", "[2026-11]"},
		{"before a tenant's 2 hours", time.Date(2026, 11, 30, 16, 59, 0, 0, time.UTC), 2 * time.Hour, "", "[2026-10]"},
		{"November closed", time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), 0, "2026-11", "[]"},
	}
	for _, tt := range tests {
		grace = tt.grace
		if tt.closed != "" {
			if err := e.periods.Set(ctx, "acme", tt.closed, true, "test"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := a.Due(ctx, "acme", tt.now)
		if err != nil || fmt.Sprint(got) != tt.want {
			t.Errorf("%s: due %v %v, want %s", tt.name, got, err, tt.want)
		}
	}
	if got, err := a.Due(ctx, "beta", time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)); err != nil || len(got) != 0 {
		t.Errorf("a tenant without a catalogue: %v %v", got, err)
	}
}

// Two admin processes looking at the same moment create one job, with the
// deterministic id of (tenant, period); looking again creates nothing; the
// job is a billing run of the period, which runs to November's draft.
func TestAutoRunCreatesOneJob(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	e.storeRecords(november("acme")...)
	e.now = time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	store := jobs.NewStore(e.conn)
	tenants := func() []string { return []string{"acme"} }
	admins := []*Auto{NewAuto(e.svc, AutoOptions{Jobs: store, Tenants: tenants}), NewAuto(e.svc, AutoOptions{Jobs: store, Tenants: tenants})}
	var mu sync.Mutex
	var created []jobs.Job
	var wg sync.WaitGroup
	for _, a := range admins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			js, err := a.Tick(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			created = append(created, js...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(created) != 1 || created[0].ID != AutoJobID("acme", "2026-11") || created[0].Kind != Kind {
		t.Fatalf("created %+v, want one job %s", created, AutoJobID("acme", "2026-11"))
	}
	if again, err := admins[0].Tick(ctx); err != nil || len(again) != 0 {
		t.Fatalf("a second look created %+v %v", again, err)
	}
	j, err := store.Get(ctx, "acme", created[0].ID)
	if err != nil || !jobs.ValidID(j.ID) || string(j.Params) != `{"period":"2026-11"}` || j.Status != jobs.StatusPending {
		t.Fatalf("stored job %+v %v", j, err)
	}
	n, err := store.Count(ctx, "acme", jobs.Filter{Kind: Kind})
	if err != nil || n != 1 {
		t.Fatalf("%d billing run jobs, %v", n, err)
	}
	// The job is an ordinary billing run.
	res, err := e.svc.Run(ctx, Request{Tenant: "acme", RunID: j.ID, Period: "2026-11", Actor: j.CreatedBy, Watermark: e.now})
	if err != nil || res.Receivables != 1 || !e.receivable("acme", "2026-11").Total.Equal(dec("12063")) {
		t.Fatalf("the automatic run: %+v %v", res, err)
	}
}

// A tenant's grace is read from the tenant registry (tenants.Store, the
// admin role's wiring): with 3 days, November (ended 2026-11-30 15:00 UTC in
// Tokyo) is not run 2 days after its end, and is run 3 days after; another
// tenant without a grace of its own keeps the default day.
func TestAutoRunUsesTheTenantsGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	e.loadCatalogue("beta")
	reg := tenants.NewStore(e.conn)
	for _, id := range []string{"acme", "beta"} {
		if _, err := reg.CreateTenant(ctx, id, "", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.SetTenantBillingGrace(ctx, "acme", 3*24*time.Hour, "test"); err != nil {
		t.Fatal(err)
	}
	store := jobs.NewStore(e.conn)
	a := NewAuto(e.svc, AutoOptions{Jobs: store, Tenants: func() []string { return []string{"acme", "beta"} }, Grace: reg.BillingGrace})
	november := func(tenant string) bool {
		_, err := store.Get(ctx, tenant, AutoJobID(tenant, "2026-11"))
		if err != nil && !errors.Is(err, jobs.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	end := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		after      time.Duration
		acme, beta bool
	}{
		{2*24*time.Hour - time.Second, false, true},
		{2 * 24 * time.Hour, false, true},
		{3*24*time.Hour - time.Second, false, true},
		{3 * 24 * time.Hour, true, true},
	} {
		e.now = end.Add(tt.after)
		if _, err := a.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got, gotBeta := november("acme"), november("beta"); got != tt.acme || gotBeta != tt.beta {
			t.Errorf("%v after November's end: November's run of acme %v, of beta %v; want %v, %v", tt.after, got, gotBeta, tt.acme, tt.beta)
		}
	}
}
