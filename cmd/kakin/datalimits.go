package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/tenants"
)

// dataLimitFlags registers the data-limit flags of `kakin tenants set-limits`.
func dataLimitFlags(fs *flag.FlagSet) *tenants.DataLimits {
	var l tenants.DataLimits
	fs.IntVar(&l.Customers, "max-customers", 0, "live customers (0: default 100,000)")
	fs.IntVar(&l.Contracts, "max-contracts", 0, "live service + discount contracts (0: default 100,000)")
	fs.IntVar(&l.DetailLines, "max-detail-lines", 0, "receivable detail lines (0: default 1,000,000)")
	return &l
}

// setDataLimits stores the data-limit flags given (the others keep their
// value) and reports whether only data limits were given (the rate limits
// are then left as they are).
func setDataLimits(ctx context.Context, store *tenants.Store, fs *flag.FlagSet, tenant string, given *tenants.DataLimits) (bool, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["max-customers"] && !set["max-contracts"] && !set["max-detail-lines"] {
		return false, nil
	}
	cur, err := store.DataLimits(ctx, tenant)
	if err != nil {
		return false, err
	}
	if set["max-customers"] {
		cur.Customers = given.Customers
	}
	if set["max-contracts"] {
		cur.Contracts = given.Contracts
	}
	if set["max-detail-lines"] {
		cur.DetailLines = given.DetailLines
	}
	if err := store.SetDataLimits(ctx, tenant, cur, cliActor()); err != nil {
		return false, err
	}
	eff := cur.WithDefaults()
	fmt.Printf("tenant %s data limits: customers %d, contracts %d, detail lines %d\n", tenant, eff.Customers, eff.Contracts, eff.DetailLines)
	rates := set["ingest-events-per-second"] || set["ingest-requests-per-second"] || set["admin-requests-per-minute"]
	return !rates, nil
}

// catalogueLimits reads a tenant's customer and contract limits for the
// catalogue store.
func catalogueLimits(store *tenants.Store) catalogstore.DataLimitsFunc {
	return func(ctx context.Context, tenant string) (catalogstore.DataLimits, error) {
		l, err := store.DataLimits(ctx, tenant)
		if err != nil {
			return catalogstore.DataLimits{}, err
		}
		l = l.WithDefaults()
		return catalogstore.DataLimits{Customers: l.Customers, Contracts: l.Contracts}, nil
	}
}

// detailLineLimit reads a tenant's receivable detail-line limit for the
// billing run.
func detailLineLimit(store *tenants.Store) func(ctx context.Context, tenant string) (uint64, error) {
	return func(ctx context.Context, tenant string) (uint64, error) {
		l, err := store.DataLimits(ctx, tenant)
		if err != nil {
			return 0, err
		}
		return uint64(l.WithDefaults().DetailLines), nil
	}
}
