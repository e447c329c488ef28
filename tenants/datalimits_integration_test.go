package tenants

import (
	"context"
	"testing"
)

// Data limits: unset → the defaults; set → stored per tenant; zero → the
// default again; other tenants keep theirs.
func TestDataLimits(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a, b := newTenant(t, s), newTenant(t, s)
	l, err := s.DataLimits(ctx, a)
	if err != nil || l != (DataLimits{}) || l.WithDefaults() != (DataLimits{100_000, 100_000, 1_000_000}) {
		t.Fatalf("unset: %+v %v", l, err)
	}
	if err := s.SetDataLimits(ctx, a, DataLimits{Customers: 5, DetailLines: 20}, "test"); err != nil {
		t.Fatal(err)
	}
	if l, err := s.DataLimits(ctx, a); err != nil || l.WithDefaults() != (DataLimits{5, 100_000, 20}) {
		t.Fatalf("set: %+v %v", l, err)
	}
	if l, err := s.DataLimits(ctx, b); err != nil || l != (DataLimits{}) {
		t.Fatalf("other tenant: %+v %v", l, err)
	}
	if err := s.SetDataLimits(ctx, a, DataLimits{Customers: -1}, "test"); err == nil {
		t.Fatal("a negative limit was stored")
	}
}
