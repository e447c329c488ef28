package catalogstore

import (
	"context"
	"fmt"
)

// DataLimits bound how much of the catalogue one tenant may hold (000
// §3(4)): customers, and service + discount contracts together.
type DataLimits struct {
	Customers int
	Contracts int
}

// DefaultDataLimits are the limits of a tenant that set none: 100,000
// customers and 100,000 service and discount contracts.
var DefaultDataLimits = DataLimits{Customers: 100_000, Contracts: 100_000}

// LimitError refuses a write that would take a tenant past a data limit.
type LimitError struct {
	Limit string // "customers" or "contracts"
	Max   int
	Would int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the tenant's %s limit is %d; this change would make %d", e.Limit, e.Max, e.Would)
}

// checkLimits refuses a transaction that adds live customers or contracts
// beyond the tenant's limits. Only growth is refused: a tenant over a limit
// (a lowered limit) can still change and delete.
func (tx *Tx) checkLimits() error {
	var customers, contracts int
	for key, st := range tx.staged {
		wasLive := st.base != nil && !st.base.deleted
		d := 0
		switch {
		case !st.deleted && !wasLive:
			d = 1
		case st.deleted && wasLive:
			d = -1
		}
		switch key.kind {
		case KindCustomer:
			customers += d
		case KindServiceContract, KindDiscountContract:
			contracts += d
		}
	}
	if customers <= 0 && contracts <= 0 {
		return nil
	}
	lim := DefaultDataLimits
	if tx.s.opts.DataLimits != nil {
		var err error
		if lim, err = tx.s.opts.DataLimits(tx.ctx, tx.tenant); err != nil {
			return err
		}
	}
	if customers > 0 {
		if n := tx.s.replica.Count(tx.tenant, KindCustomer, Query{}) + customers; n > lim.Customers {
			return &LimitError{Limit: "customers", Max: lim.Customers, Would: n}
		}
	}
	if contracts > 0 {
		n := tx.s.replica.Count(tx.tenant, KindServiceContract, Query{}) +
			tx.s.replica.Count(tx.tenant, KindDiscountContract, Query{}) + contracts
		if n > lim.Contracts {
			return &LimitError{Limit: "contracts", Max: lim.Contracts, Would: n}
		}
	}
	return nil
}

// DataLimitsFunc returns a tenant's data limits.
type DataLimitsFunc func(ctx context.Context, tenant string) (DataLimits, error)
