package billing

import (
	"fmt"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Period is a basic contract's billing period as Compose needs it.
type Period struct {
	ID         pricing.PeriodID
	Start, End catalog.Date
	Location   *time.Location
}

// Tenant is one tenant's compiled catalogue, as the stream prices with it.
type Tenant struct {
	Tenant    string
	Engine    *pricing.Engine
	Catalogue *catalog.Catalogue
	fees      map[string]*catalog.Fee
	byBasic   map[string][]string // basic contract → its service contracts, sorted
}

// NewTenant indexes a tenant's catalogue and compiled engine.
func NewTenant(tenant string, e *pricing.Engine, c *catalog.Catalogue) *Tenant {
	t := &Tenant{Tenant: tenant, Engine: e, Catalogue: c, fees: map[string]*catalog.Fee{}, byBasic: map[string][]string{}}
	for i := range c.Fees {
		t.fees[c.Fees[i].Code] = &c.Fees[i]
	}
	for _, k := range c.ServiceContracts {
		t.byBasic[k.Basic] = append(t.byBasic[k.Basic], k.ID)
	}
	for _, ks := range t.byBasic {
		sort.Strings(ks)
	}
	return t
}

// Contracts returns the service contracts of a basic contract, sorted.
func (t *Tenant) Contracts(basic string) []string { return t.byBasic[basic] }

// Period returns a basic contract's billing period, or false when it has no
// service contract (it then has nothing to bill).
func (t *Tenant) Period(basic string, id pricing.PeriodID) (Period, bool, error) {
	ks := t.byBasic[basic]
	if len(ks) == 0 {
		return Period{}, false, nil
	}
	p, err := t.Engine.Period(ks[0], id)
	if err != nil {
		return Period{}, false, err
	}
	return Period{ID: id, Start: p.Start, End: p.End, Location: p.Location}, true, nil
}

// tax returns a fee's tax category and inclusiveness: of the fee version in
// force at the start of day `on` in loc, else of the latest version that
// started before it, else standard and exclusive.
func (t *Tenant) tax(fee string, on catalog.Date, loc *time.Location) (catalog.TaxCategory, bool) {
	f := t.fees[fee]
	if f == nil {
		return catalog.TaxStandard, false
	}
	at := on.In(loc)
	var best *catalog.FeeVersion
	for i := range f.Versions {
		v := &f.Versions[i]
		if v.Validity.Contains(at) {
			best = v
			break
		}
		if !v.ValidFrom.After(at) && (best == nil || v.ValidFrom.After(best.ValidFrom)) {
			best = v
		}
	}
	if best == nil {
		return catalog.TaxStandard, false
	}
	return best.TaxCategory, best.TaxInclusive
}

// Charges recomputes a basic contract's charges of a period with the pricing
// engine — the same code the stream prices with: every fixed fee of its
// service contracts (FixedCharges), the period total of every metered
// charge of rating the customer's records from empty states in their order
// (RatePeriod; a time-weighted charge at its period-end amount,
// Batch.PeriodEnd), and the period lines — idle fee minimums and commitment
// true-ups (PeriodLines, which the stream's fixed-fee emitter writes once
// the period ended). batch is the customer's RatePeriod result (records of any
// period; the period's charges are picked out). The returned charges carry
// their fee's tax category.
func (t *Tenant) Charges(basic string, p Period, batch *pricing.Batch) ([]Charge, error) {
	var out []Charge
	contracts := map[string]bool{}
	for _, k := range t.byBasic[basic] {
		contracts[k] = true
		fixed, err := t.Engine.FixedCharges(k, p.ID)
		if err != nil {
			return nil, fmt.Errorf("fixed fees of %s: %w", k, err)
		}
		for _, fl := range fixed {
			cat, incl := t.tax(fl.Fee, fl.From, p.Location)
			out = append(out, Charge{Kind: KindFixed, Contract: fl.Contract, Plan: fl.Plan, Fee: fl.Fee, Item: fl.Fee,
				Quantity: decimal.NewFromInt(fl.Quantity), UnitPrice: decimal.Zero, Amount: fl.Amount, Discount: fl.Discount,
				ChargePeriod: p.ID.String(), From: fl.From, To: fl.To, TaxCategory: cat, TaxInclusive: incl})
		}
	}
	if batch != nil {
		type agg struct {
			c     Charge
			order int
		}
		byKey := map[pricing.Key]*agg{}
		for i, l := range batch.Lines {
			if l.Key.Period != p.ID || !contracts[l.Key.Contract] {
				continue
			}
			a := byKey[l.Key]
			if a == nil {
				cat, incl := t.tax(l.Key.Fee, p.End, p.Location)
				a = &agg{order: i, c: Charge{Kind: KindMetered, Contract: l.Key.Contract, Plan: l.Plan, Fee: l.Key.Fee,
					Item: l.Key.Item(), Rate: l.Key.Rate, UnitPrice: decimal.Zero, Amount: decimal.Zero, Discount: decimal.Zero,
					ChargePeriod: p.ID.String(), From: p.Start, To: p.End, TaxCategory: cat, TaxInclusive: incl}}
				if st := batch.States[l.Key]; st != nil {
					a.c.Quantity = st.Quantity()
				}
				byKey[l.Key] = a
			}
			a.c.Amount = a.c.Amount.Add(l.Line.Decimal())
			a.c.Discount = a.c.Discount.Add(l.Line.DiscountDecimal())
			if l.UnitPriced {
				a.c.UnitPrice, a.c.UnitPriced = l.UnitPrice, true
			}
		}
		// Time-weighted charges: their lines are zero, their amount is the
		// level-time of the period priced at its end (the stream's emitter
		// writes the same, pricing.Batch.PeriodEndOf), their quantity the
		// level-time.
		for k := range contracts {
			for _, pe := range batch.PeriodEndOf(k, p.ID) {
				if a := byKey[pe.Key]; a != nil {
					a.c.Amount = a.c.Amount.Add(pe.Line.Decimal())
					a.c.Discount = a.c.Discount.Add(pe.Line.DiscountDecimal())
					a.c.Quantity = pe.Quantity
				}
			}
		}
		for _, a := range byKey {
			out = append(out, a.c)
		}
	}
	// The period's own lines (idle fee minimums, the commitment true-up):
	// the stream's emitter computes the same (pricing.Engine.PeriodLines).
	for _, k := range t.byBasic[basic] {
		if !t.Engine.HasPeriodLines(k, p.ID) {
			continue // the common case: no commitment, no idle minimums
		}
		lines, err := t.Engine.PeriodLines(k, p.ID, batch, false)
		if err != nil {
			return nil, fmt.Errorf("period lines of %s: %w", k, err)
		}
		for _, fl := range lines {
			cat, incl := t.tax(fl.Fee, p.End, p.Location)
			out = append(out, Charge{Kind: KindFixed, Contract: fl.Contract, Plan: fl.Plan, Fee: fl.Fee, Item: fl.Item(),
				Quantity: decimal.Zero, UnitPrice: decimal.Zero, Amount: fl.Amount, Discount: fl.Discount,
				ChargePeriod: p.ID.String(), From: fl.From, To: fl.To, TaxCategory: cat, TaxInclusive: incl})
		}
	}
	return out, nil
}

// StreamItem is the item the stream's rated lines carry for a charge
// (rated_usage.item): contract/fee[split]. Reconciliation compares per item.
func StreamItem(c *Charge) string { return c.Contract + "/" + c.Item }

// RateCustomer rates a customer's records (in the order the rater priced
// them) from empty states.
func (t *Tenant) RateCustomer(events []schemas.UsageEvent) *pricing.Batch {
	return t.Engine.RatePeriod(events)
}
