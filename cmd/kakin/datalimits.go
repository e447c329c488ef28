package main

import (
	"context"
	"flag"
	"fmt"

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
