package run

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/rater/pricing"
)

// ErrNoSuchContract answers a preview of a customer or basic contract the
// tenant's catalogue does not have (or a basic contract of another customer).
var ErrNoSuchContract = errors.New("no such customer or basic contract")

// PreviewRequest names the drafts a preview computes.
type PreviewRequest struct {
	Tenant string
	// Customer and/or BasicContract: every basic contract of the customer,
	// or that one (which must be the customer's when both are given).
	Customer      string
	BasicContract string
	// Period, YYYY-MM; empty: each basic contract's open period at the
	// business clock's now (the one whose days contain it).
	Period string
}

// Preview computes the draft receivables of a customer or basic contract
// as a billing run would write them now: the same code path (compute), with
// the ingest watermark at the business clock's now and the same adjustments
// for the closed periods before, writing nothing and taking no lock. So a
// preview and the receivable a run (or close) writes are identical — same
// id, lines, totals and hash — when no record arrives between the two. A
// closed period is refused (ErrClosed: its receivables are final; read them).
// The drafts are in (basic contract) order; a basic contract with nothing to
// bill has none.
func (s *Service) Preview(ctx context.Context, req PreviewRequest) ([]*billing.Receivable, error) {
	cat := s.o.Catalogues.Catalogue(req.Tenant)
	if cat == nil || len(cat.BasicContracts) == 0 {
		return nil, ErrNoCatalogue
	}
	if req.Customer == "" && req.BasicContract == "" {
		return nil, fmt.Errorf("preview: %w (name a customer or a basic contract)", ErrNoSuchContract)
	}
	if req.Period != "" {
		if _, err := pricing.ParsePeriod(req.Period); err != nil {
			return nil, err
		}
	}
	engine, err := pricing.Compile(cat)
	if err != nil {
		return nil, fmt.Errorf("compile the catalogue of %s: %w", req.Tenant, err)
	}
	tn := billing.NewTenant(req.Tenant, engine, cat)
	closed, err := s.o.Periods.Closed(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	now := s.o.Now().UTC()
	// The basic contracts asked for, grouped by the period to compute.
	byPeriod := map[string][]string{}
	customer := req.Customer
	found := false
	for _, b := range cat.BasicContracts {
		if req.BasicContract != "" && b.ID != req.BasicContract || req.Customer != "" && b.Customer != req.Customer {
			continue
		}
		found, customer = true, b.Customer
		period := req.Period
		if period == "" {
			ks := tn.Contracts(b.ID)
			if len(ks) == 0 {
				continue // nothing to bill
			}
			p, err := engine.PeriodAt(ks[0], now)
			if err != nil {
				return nil, fmt.Errorf("the open period of %s: %w", b.ID, err)
			}
			period = p.ID.String()
		}
		byPeriod[period] = append(byPeriod[period], b.ID)
	}
	if !found {
		return nil, fmt.Errorf("preview of %s%s: %w", req.Customer, req.BasicContract, ErrNoSuchContract)
	}
	var out []*billing.Receivable
	for period, basics := range byPeriod {
		if closed[period] {
			return nil, fmt.Errorf("preview of %s: %w (its receivables are final)", period, ErrClosed)
		}
		basic := ""
		if len(basics) == 1 && req.BasicContract != "" {
			basic = basics[0]
		}
		res, err := s.compute(ctx, Request{Tenant: req.Tenant, RunID: "preview", Period: period, Customer: customer,
			Watermark: now, preview: true, basic: basic, tn: tn}, closed)
		if err != nil {
			return nil, err
		}
		for _, r := range res.drafts {
			for _, b := range basics {
				if r.BasicContract == b {
					out = append(out, r)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].BasicContract != out[j].BasicContract {
			return out[i].BasicContract < out[j].BasicContract
		}
		return out[i].Period < out[j].Period
	})
	return out, nil
}
