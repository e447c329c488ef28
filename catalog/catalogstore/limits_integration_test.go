package catalogstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// Data limits at the boundary: with limits of 3 customers and 2 contracts
// (service + discount), the third customer is accepted and the fourth
// refused naming the limit; a second service contract is accepted and a
// third refused; after a delete there is room again; updates of a tenant at
// its limit still go through; another tenant is not affected.
func TestDataLimitsAtTheBoundary(t *testing.T) {
	e := newEnv(t)
	ten := tenantFor(t, "limits")
	// The business clock stands before the contracts start, so one can be deleted.
	beforeContracts := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	p := e.start(func(o *StoreOptions) {
		o.Now = func() time.Time { return beforeContracts }
		o.DataLimits = func(_ context.Context, tenant string) (DataLimits, error) {
			if tenant == ten {
				return DataLimits{Customers: 3, Contracts: 2}, nil
			}
			return DefaultDataLimits, nil
		}
	})
	ctx := context.Background()
	contractFixture(t, p, ten) // customers c1, c2 with basic contracts b-c1, b-c2
	limitOf := func(err error) string {
		var le *LimitError
		if errors.As(err, &le) {
			return le.Limit
		}
		return "no limit error: " + errString(err)
	}
	if _, err := p.store.Create(ctx, ten, "t", KindCustomer, &catalog.Customer{ID: "c3"}); err != nil {
		t.Fatalf("third customer: %v", err)
	}
	if _, err := p.store.Create(ctx, ten, "t", KindCustomer, &catalog.Customer{ID: "c4"}); limitOf(err) != "customers" {
		t.Fatalf("fourth customer: %v", err)
	}
	if _, err := p.store.Create(ctx, ten, "t", KindCustomer, &catalog.Customer{ID: "c3", Status: "suspended"}); err == nil {
		t.Fatal("re-creating a live customer succeeded")
	}
	for i, id := range []string{"k1", "k2"} {
		if _, err := p.store.Create(ctx, ten, "t", KindServiceContract, serviceContract(id, "c1", "cloud", "", "cloud-standard")); err != nil {
			t.Fatalf("contract %d: %v", i+1, err)
		}
	}
	if _, err := p.store.Create(ctx, ten, "t", KindServiceContract, serviceContract("k3", "c2", "cloud", "", "cloud-standard")); limitOf(err) != "contracts" {
		t.Fatalf("third contract: %v", err)
	}
	if _, err := p.store.Delete(ctx, ten, "t", KindServiceContract, "k2", nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := p.store.Create(ctx, ten, "t", KindServiceContract, serviceContract("k3", "c2", "cloud", "", "cloud-standard")); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	other := tenantFor(t, "other")
	contractFixture(t, p, other)
	for _, id := range []string{"c3", "c4", "c5"} {
		if _, err := p.store.Create(ctx, other, "t", KindCustomer, &catalog.Customer{ID: id}); err != nil {
			t.Fatalf("other tenant's %s: %v", id, err)
		}
	}
}
