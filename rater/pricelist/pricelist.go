// Package pricelist prices usage per unit from a price list file: per
// tenant a currency, rounding, time zone, known customers and a price per
// element. The rater uses it for the tenants that have no catalogue; the load
// generator uses it to know what its records should cost.
package pricelist

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
)

// stageName is the rater's StageName, which the unrated records made here
// carry (the rater imports this package, not the reverse).
const stageName = "rater"

// File is the JSON form of a price list: per tenant, its currency,
// rounding, time zone, known customers and a per-unit price per element.
type File struct {
	Tenants map[string]TenantFile `json:"tenants"`
}

// TenantFile is one tenant's entry in a File.
type TenantFile struct {
	Currency  string   `json:"currency"`
	Rounding  string   `json:"rounding"`
	TimeZone  string   `json:"time_zone"`
	Customers []string `json:"customers"`
	// AnyCustomer prices usage of customers not listed in Customers too
	// (for load tests and sandboxes; a real tenant lists its customers).
	AnyCustomer bool              `json:"any_customer,omitempty"`
	Prices      map[string]string `json:"prices"` // element code → price per unit
}

// List is a validated, ready-to-use price list.
type List struct {
	tenants map[string]*tenantPrices
}

type tenantPrices struct {
	currency  money.Currency
	rounding  money.Mode
	loc       *time.Location
	customers map[string]struct{}
	anyCust   bool
	prices    map[string]decimal.Decimal
}

// Load reads and validates a price list file.
func Load(path string) (*List, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price list: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("price list %s: %w", path, err)
	}
	pl, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("price list %s: %w", path, err)
	}
	return pl, nil
}

// New validates f.
func New(f File) (*List, error) {
	pl := &List{tenants: map[string]*tenantPrices{}}
	for name, t := range f.Tenants {
		if !schemas.ValidTenant(name) {
			return nil, fmt.Errorf("tenant %q: malformed tenant id", name)
		}
		cur, err := money.LookupCurrency(t.Currency)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", name, err)
		}
		mode, err := money.ParseMode(t.Rounding)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", name, err)
		}
		loc, err := time.LoadLocation(t.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: time zone: %w", name, err)
		}
		tp := &tenantPrices{currency: cur, rounding: mode, loc: loc,
			customers: map[string]struct{}{}, anyCust: t.AnyCustomer, prices: map[string]decimal.Decimal{}}
		for _, c := range t.Customers {
			tp.customers[c] = struct{}{}
		}
		for el, p := range t.Prices {
			d, err := decimal.NewFromString(p)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: price of %s: %w", name, el, err)
			}
			if d.IsNegative() {
				return nil, fmt.Errorf("tenant %s: price of %s is negative", name, el)
			}
			if !d.Equal(d.Truncate(9)) {
				return nil, fmt.Errorf("tenant %s: price of %s has more than 9 decimal places", name, el)
			}
			if d.GreaterThanOrEqual(catalog.MaxUnitPrice) {
				// The catalogue's bound: price × any quantity ingest
				// accepts (< 10^18) must fit the stored amounts (< 10^28).
				return nil, fmt.Errorf("tenant %s: price of %s must be less than 10^10 (times a record's quantity it must fit the stored amounts)", name, el)
			}
			tp.prices[el] = d
		}
		pl.tenants[name] = tp
	}
	return pl, nil
}

// Outcome of pricing one event: either a Line or an Unrated reason.
type Outcome struct {
	Line    *schemas.RatedLine
	Unrated *schemas.Unrated
}

// Rate prices one event at the per-unit price of its element.
func (pl *List) Rate(ev *schemas.UsageEvent, now time.Time) Outcome {
	t, ok := pl.tenants[ev.Tenant]
	if !ok {
		return unrated(ev, schemas.ReasonUnknownTenant, "tenant has no price list", now)
	}
	if _, ok := t.customers[ev.Customer]; !ok && !t.anyCust {
		return unrated(ev, schemas.ReasonUnknownCustomer, fmt.Sprintf("customer %q is not known to tenant %s", ev.Customer, ev.Tenant), now)
	}
	price, ok := t.prices[ev.Element]
	if !ok {
		return unrated(ev, schemas.ReasonUnknownElement, fmt.Sprintf("element %q has no price", ev.Element), now)
	}
	amount := money.Round(ev.Quantity.Mul(price), t.currency.Places, t.rounding)
	if !schemas.StoredDecimalOK(price) || !schemas.StoredDecimalOK(amount) || !schemas.StoredDecimalOK(ev.Quantity) {
		// The aggregator would refuse the line (and retry it for ever).
		return unrated(ev, schemas.ReasonOverflow, fmt.Sprintf("quantity %s × unit price %s = %s does not fit the stored amounts (below 10^28, at most 9 decimal places)",
			ev.Quantity, price, amount), now)
	}
	return Outcome{Line: &schemas.RatedLine{
		LineID:     schemas.LineID(ev.Tenant, ev.ID, ev.Element),
		Event:      *ev,
		Item:       ev.Element,
		UnitPrice:  price,
		UnitPriced: true,
		Amount:     amount,
		Currency:   t.currency.Code,
		Period:     ev.Time.In(t.loc).Format("2006-01"),
		RatedAt:    now,
	}}
}

func unrated(ev *schemas.UsageEvent, code, reason string, now time.Time) Outcome {
	return Outcome{Unrated: &schemas.Unrated{Event: *ev, ReasonCode: code, Reason: reason, Stage: stageName, At: now}}
}
