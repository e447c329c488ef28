package catalog

import (
	"fmt"
	"slices"
	"time"
)

// Catalogue is a tenant's whole price catalogue: every master, and, for
// what-if rating and tests, optionally contracts. It is the content of a
// catalogue file and of `kakin catalog export`.
type Catalogue struct {
	Tenant         string          `json:"tenant,omitempty"`
	Services       []Service       `json:"services,omitempty"`
	Plans          []Plan          `json:"plans,omitempty"`
	Fees           []Fee           `json:"fees,omitempty"`
	Elements       []Element       `json:"elements,omitempty"`
	RateTables     []RateTable     `json:"rate_tables,omitempty"`
	DiscountTables []DiscountTable `json:"discount_tables,omitempty"`

	// Contracts, when present, are customers' contracts (used by
	// `kakin rate` to price usage offline).
	BasicContracts    []BasicContract    `json:"basic_contracts,omitempty"`
	ServiceContracts  []ServiceContract  `json:"service_contracts,omitempty"`
	DiscountContracts []DiscountContract `json:"discount_contracts,omitempty"`
}

// Validate checks every entry on its own, that codes are unique per kind, and
// that every reference names an entry of the right kind whose validity
// covers it. Fields are prefixed with the entry's place, e.g.
// "rate_tables[2].versions[0].tiers[1].up_to".
func (c *Catalogue) Validate() error {
	var errs Errors
	services := index(c.Services, func(s *Service) string { return s.Code }, "services", &errs)
	plans := index(c.Plans, func(p *Plan) string { return p.Code }, "plans", &errs)
	fees := index(c.Fees, func(f *Fee) string { return f.Code }, "fees", &errs)
	elements := index(c.Elements, func(e *Element) string { return e.Code }, "elements", &errs)
	rateTables := index(c.RateTables, func(r *RateTable) string { return r.Code }, "rate_tables", &errs)
	discountTables := index(c.DiscountTables, func(d *DiscountTable) string { return d.Code }, "discount_tables", &errs)
	basics := index(c.BasicContracts, func(b *BasicContract) string { return b.ID }, "basic_contracts", &errs)
	contracts := index(c.ServiceContracts, func(s *ServiceContract) string { return s.ID }, "service_contracts", &errs)
	index(c.DiscountContracts, func(d *DiscountContract) string { return d.ID }, "discount_contracts", &errs)

	each(c.Services, "services", (*Service).Validate, &errs)
	each(c.Plans, "plans", (*Plan).Validate, &errs)
	each(c.Fees, "fees", (*Fee).Validate, &errs)
	each(c.Elements, "elements", (*Element).Validate, &errs)
	each(c.RateTables, "rate_tables", (*RateTable).Validate, &errs)
	each(c.DiscountTables, "discount_tables", (*DiscountTable).Validate, &errs)
	each(c.BasicContracts, "basic_contracts", (*BasicContract).Validate, &errs)
	each(c.ServiceContracts, "service_contracts", (*ServiceContract).Validate, &errs)
	each(c.DiscountContracts, "discount_contracts", (*DiscountContract).Validate, &errs)

	for i, s := range c.Services {
		for j, v := range s.Versions {
			f := fmt.Sprintf("services[%d].versions[%d]", i, j)
			if v.Parent != "" && services[v.Parent] == nil {
				errs.Add(f+".parent", fmt.Sprintf("unknown service %q", v.Parent))
			}
			for k, p := range v.Plans {
				if plans[p] == nil {
					errs.Add(fmt.Sprintf("%s.plans[%d]", f, k), fmt.Sprintf("unknown plan %q", p))
				}
			}
		}
	}
	for i, p := range c.Plans {
		for j, v := range p.Versions {
			for k, code := range v.Fees {
				f := fmt.Sprintf("plans[%d].versions[%d].fees[%d]", i, j, k)
				fee := fees[code]
				if fee == nil {
					errs.Add(f, fmt.Sprintf("unknown fee %q", code))
					continue
				}
				if !covers(fee.Versions, func(x *FeeVersion) Validity { return x.Validity }, v.Validity) {
					errs.Add(f, fmt.Sprintf("fee %q has no version for all of this plan version's validity", code))
				}
				for _, fv := range fee.Versions {
					if fv.Validity.Overlaps(v.Validity) && v.Type == PlanFixed && fv.Kind == FeeMetered {
						errs.Add(f, fmt.Sprintf("fee %q is metered but the plan is fixed", code))
						break
					}
				}
			}
		}
	}
	for i, rt := range c.RateTables {
		for j, v := range rt.Versions {
			if v.Model != ModelCapacity || v.Capacity == nil {
				continue
			}
			for k, u := range v.Capacity.Units {
				if elements[u] == nil {
					errs.Add(fmt.Sprintf("rate_tables[%d].versions[%d].capacity.units[%d]", i, j, k), fmt.Sprintf("unknown element %q", u))
				}
			}
		}
	}
	for i, fe := range c.Fees {
		for j, v := range fe.Versions {
			f := fmt.Sprintf("fees[%d].versions[%d]", i, j)
			if v.Kind != FeeMetered {
				continue
			}
			if el := elements[v.Element]; el == nil {
				errs.Add(f+".element", fmt.Sprintf("unknown element %q", v.Element))
			} else if !covers(el.Versions, func(x *ElementVersion) Validity { return x.Validity }, v.Validity) {
				errs.Add(f+".element", fmt.Sprintf("element %q has no version for all of this fee version's validity", v.Element))
			}
			for k, r := range v.Rates {
				rf := fmt.Sprintf("%s.rates[%d].rate_table", f, k)
				if rt := rateTables[r.RateTable]; rt == nil {
					errs.Add(rf, fmt.Sprintf("unknown rate table %q", r.RateTable))
				} else if !covers(rt.Versions, func(x *RateTableVersion) Validity { return x.Validity }, v.Validity) {
					errs.Add(rf, fmt.Sprintf("rate table %q has no version for all of this fee version's validity", r.RateTable))
				} else {
					for _, rv := range rt.Versions {
						if rv.Capacity != nil && rv.Model == ModelCapacity && !slices.Contains(rv.Capacity.Units, v.Element) {
							errs.Add(rf, fmt.Sprintf("rate table %q is a capacity table whose units do not include the fee's element %q", r.RateTable, v.Element))
							break
						}
					}
				}
			}
		}
	}
	for i, s := range c.ServiceContracts {
		f := fmt.Sprintf("service_contracts[%d]", i)
		b := basics[s.Basic]
		switch {
		case b == nil:
			errs.Add(f+".basic_contract", fmt.Sprintf("unknown basic contract %q", s.Basic))
		case b.Customer != s.Customer:
			errs.Add(f+".basic_contract", fmt.Sprintf("basic contract %q belongs to customer %q", s.Basic, b.Customer))
		}
		if services[s.Service] == nil {
			errs.Add(f+".service", fmt.Sprintf("unknown service %q", s.Service))
		}
		if s.Parent != "" && contracts[s.Parent] == nil {
			errs.Add(f+".parent", fmt.Sprintf("unknown service contract %q", s.Parent))
		}
		for j, term := range s.Plans {
			p := plans[term.Plan]
			if p == nil {
				errs.Add(fmt.Sprintf("%s.plans[%d].plan", f, j), fmt.Sprintf("unknown plan %q", term.Plan))
				continue
			}
			if b != nil {
				for _, pv := range p.Versions {
					if pv.Currency != b.Currency {
						errs.Add(fmt.Sprintf("%s.plans[%d].plan", f, j),
							fmt.Sprintf("plan %q is priced in %s but the basic contract bills in %s", term.Plan, pv.Currency, b.Currency))
						break
					}
				}
			}
		}
	}
	for i, d := range c.DiscountContracts {
		f := fmt.Sprintf("discount_contracts[%d]", i)
		if discountTables[d.DiscountTable] == nil {
			errs.Add(f+".discount_table", fmt.Sprintf("unknown discount table %q", d.DiscountTable))
		}
		if d.Service != "" && services[d.Service] == nil {
			errs.Add(f+".service", fmt.Sprintf("unknown service %q", d.Service))
		}
		switch d.Scope.Level {
		case "contract":
			if contracts[d.Scope.Target] == nil {
				errs.Add(f+".scope.target", fmt.Sprintf("unknown service contract %q", d.Scope.Target))
			}
		case "plan":
			if plans[d.Scope.Target] == nil {
				errs.Add(f+".scope.target", fmt.Sprintf("unknown plan %q", d.Scope.Target))
			}
		case "fee":
			if fees[d.Scope.Target] == nil {
				errs.Add(f+".scope.target", fmt.Sprintf("unknown fee %q", d.Scope.Target))
			}
		}
	}
	return errs.Err()
}

// index maps each entry's key to the entry and reports duplicate keys.
func index[T any](items []T, key func(*T) string, field string, errs *Errors) map[string]*T {
	m := make(map[string]*T, len(items))
	for i := range items {
		k := key(&items[i])
		if _, dup := m[k]; dup {
			errs.Add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q is defined twice", k))
			continue
		}
		m[k] = &items[i]
	}
	return m
}

// each validates every item and prefixes its field errors with its place.
func each[T any](items []T, field string, validate func(*T) error, errs *Errors) {
	for i := range items {
		if err := validate(&items[i]); err != nil {
			if ve, ok := err.(*ValidationError); ok {
				for _, fe := range ve.Fields {
					errs.Add(fmt.Sprintf("%s[%d].%s", field, i, fe.Field), fe.Reason)
				}
			} else {
				errs.Add(fmt.Sprintf("%s[%d]", field, i), err.Error())
			}
		}
	}
}

// covers reports whether the union of the versions' validities covers all of
// want (versions may not overlap, so walking them in order is enough).
func covers[V any](versions []V, validity func(*V) Validity, want Validity) bool {
	at := want.ValidFrom
	for {
		var next *Validity
		for i := range versions {
			v := validity(&versions[i])
			if v.Contains(at) {
				next = &v
				break
			}
		}
		if next == nil {
			return false
		}
		if next.ValidTo == nil {
			return true
		}
		if want.ValidTo != nil && !next.ValidTo.Before(*want.ValidTo) {
			return true
		}
		at = *next.ValidTo
	}
}

// VersionAt returns the version valid at t, or false.
func VersionAt[V any](versions []V, validity func(*V) Validity, t time.Time) (*V, bool) {
	for i := range versions {
		if validity(&versions[i]).Contains(t) {
			return &versions[i], true
		}
	}
	return nil, false
}
