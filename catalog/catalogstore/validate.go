package catalogstore

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// maxRefs is how many referencing entities a refused delete names.
const maxRefs = 20

// validate checks every staged change: each document on its own, its
// references against the transaction's view, what deletes would leave
// dangling, and the consistency of the masters as a whole.
func (tx *Tx) validate() error {
	var errs []FieldError
	add := func(k Kind, id, field, reason string) {
		fe := FieldError{Kind: k, ID: id, Field: field, Reason: reason}
		if !slices.Contains(errs, fe) {
			errs = append(errs, fe)
		}
	}
	masters := false
	var deletedMaster *stageKey
	for _, key := range tx.order {
		st := tx.staged[key]
		k, id := key.kind, key.id
		masters = masters || k.IsMaster()
		if st.deleted {
			if st.base == nil || st.base.deleted {
				continue
			}
			if k.IsMaster() && deletedMaster == nil {
				kk := key
				deletedMaster = &kk
			}
			if err := tx.checkInEffect(k, id, st.base.val); err != nil {
				return err
			}
			if err := tx.checkDelete(k, id); err != nil {
				return err
			}
			continue
		}
		doc := st.val
		if st.plain != nil {
			doc = st.plain
		} else if sc, ok := doc.(*StoredCustomer); ok {
			doc = &sc.Customer
		}
		if err := k.Validate(doc); err != nil {
			var ve *catalog.ValidationError
			if !errors.As(err, &ve) {
				return err
			}
			for _, f := range ve.Fields {
				add(k, id, f.Field, f.Reason)
			}
			continue
		}
		tx.checkRefs(k, id, st, add)
	}
	if masters {
		broken, err := tx.checkMasters(add)
		if err != nil {
			return err
		}
		if len(broken) > 0 && deletedMaster != nil {
			return &ReferencedError{Kind: deletedMaster.kind, ID: deletedMaster.id, By: broken[:min(len(broken), maxRefs)], Total: len(broken)}
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

func (tx *Tx) live(k Kind, id string) bool {
	_, ok := tx.Get(k, id)
	return ok
}

// checkRefs checks what a staged document references.
func (tx *Tx) checkRefs(k Kind, id string, st *staged, add func(Kind, string, string, string)) {
	unknown := func(field string, kk Kind, ref string) {
		add(k, id, field, fmt.Sprintf("unknown %s %q", kk.Label(), ref))
	}
	switch d := st.val.(type) {
	case *catalog.Group:
		for i, m := range d.Members {
			if !tx.live(KindCustomer, m) {
				unknown(fmt.Sprintf("members[%d]", i), KindCustomer, m)
			}
		}
	case *catalog.BasicContract:
		if !tx.live(KindCustomer, d.Customer) {
			unknown("customer", KindCustomer, d.Customer)
		}
		if st.base != nil && !st.base.deleted && st.base.val.(*catalog.BasicContract).Currency != d.Currency {
			// Its service contracts' plans must be priced in the new currency.
			ids, _ := tx.find(KindServiceContract, "basic_contract", id, 1<<30)
			for _, scID := range ids {
				sc, _ := tx.Get(KindServiceContract, scID)
				for _, term := range sc.(*catalog.ServiceContract).Plans {
					if cur, ok := tx.planCurrencyMismatch(term.Plan, d.Currency); ok {
						add(k, id, "currency", fmt.Sprintf("service contract %q uses plan %q priced in %s", scID, term.Plan, cur))
						break
					}
				}
			}
		}
	case *catalog.ServiceContract:
		tx.checkServiceContract(id, d, add)
	case *catalog.DiscountContract:
		if !tx.live(KindCustomer, d.Customer) {
			unknown("customer", KindCustomer, d.Customer)
		}
		if d.Service != "" && !tx.live(KindService, d.Service) { // empty: customer-wide
			unknown("service", KindService, d.Service)
		}
		if !tx.live(KindDiscountTable, d.DiscountTable) {
			unknown("discount_table", KindDiscountTable, d.DiscountTable)
		}
		switch d.Scope.Level {
		case "contract":
			if v, ok := tx.Get(KindServiceContract, d.Scope.Target); !ok {
				unknown("scope.target", KindServiceContract, d.Scope.Target)
			} else if c := v.(*catalog.ServiceContract); c.Customer != d.Customer {
				add(k, id, "scope.target", fmt.Sprintf("service contract %q belongs to customer %q", c.ID, c.Customer))
			}
		case "plan":
			if !tx.live(KindPlan, d.Scope.Target) {
				unknown("scope.target", KindPlan, d.Scope.Target)
			}
		case "fee":
			if !tx.live(KindFee, d.Scope.Target) {
				unknown("scope.target", KindFee, d.Scope.Target)
			}
		}
	case *catalog.Plan:
		// A currency change must not contradict the contracts on the plan.
		if st.base == nil || st.base.deleted {
			return
		}
		ids, _ := tx.find(KindServiceContract, "plan", id, 1<<30)
		for _, scID := range ids {
			v, _ := tx.Get(KindServiceContract, scID)
			sc := v.(*catalog.ServiceContract)
			bv, ok := tx.Get(KindBasicContract, sc.Basic)
			if !ok {
				continue
			}
			want := bv.(*catalog.BasicContract).Currency
			for j, pv := range d.Versions {
				if pv.Currency != want {
					add(k, id, fmt.Sprintf("versions[%d].currency", j),
						fmt.Sprintf("service contract %q on this plan bills in %s", scID, want))
					return
				}
			}
		}
	}
}

// planCurrencyMismatch returns a currency of the plan's versions that is not
// want, if any.
func (tx *Tx) planCurrencyMismatch(plan, want string) (string, bool) {
	v, ok := tx.Get(KindPlan, plan)
	if !ok {
		return "", false
	}
	for _, pv := range v.(*catalog.Plan).Versions {
		if pv.Currency != want {
			return pv.Currency, true
		}
	}
	return "", false
}

func (tx *Tx) checkServiceContract(id string, c *catalog.ServiceContract, add func(Kind, string, string, string)) {
	k := KindServiceContract
	if !tx.live(KindCustomer, c.Customer) {
		add(k, id, "customer", fmt.Sprintf("unknown customer %q", c.Customer))
	}
	var basic *catalog.BasicContract
	if v, ok := tx.Get(KindBasicContract, c.Basic); !ok {
		add(k, id, "basic_contract", fmt.Sprintf("unknown basic contract %q", c.Basic))
	} else if basic = v.(*catalog.BasicContract); basic.Customer != c.Customer {
		add(k, id, "basic_contract", fmt.Sprintf("basic contract %q belongs to customer %q", c.Basic, basic.Customer))
	}
	var svc *catalog.Service
	if v, ok := tx.Get(KindService, c.Service); !ok {
		add(k, id, "service", fmt.Sprintf("unknown service %q", c.Service))
	} else {
		svc = v.(*catalog.Service)
	}
	var parent *catalog.ServiceContract
	if c.Parent != "" {
		if v, ok := tx.Get(KindServiceContract, c.Parent); !ok {
			add(k, id, "parent", fmt.Sprintf("unknown service contract %q", c.Parent))
		} else if parent = v.(*catalog.ServiceContract); parent.Customer != c.Customer {
			add(k, id, "parent", fmt.Sprintf("service contract %q belongs to customer %q", c.Parent, parent.Customer))
		} else {
			seen := map[string]bool{id: true}
			for p := parent; p != nil && p.Parent != ""; {
				if seen[p.Parent] {
					add(k, id, "parent", "the parent chain forms a cycle")
					break
				}
				seen[p.ID] = true
				v, ok := tx.Get(KindServiceContract, p.Parent)
				if !ok {
					break
				}
				p = v.(*catalog.ServiceContract)
			}
		}
	}
	if svc != nil {
		loc := time.UTC
		if basic != nil {
			if l, err := time.LoadLocation(basic.TimeZone); err == nil {
				loc = l
			}
		}
		start := c.Start.In(loc)
		sv, ok := catalog.VersionAt(svc.Versions, func(v *catalog.ServiceVersion) catalog.Validity { return v.Validity }, start)
		switch {
		case !ok:
			add(k, id, "service", fmt.Sprintf("service %q has no version valid on start_date %s", c.Service, c.Start))
		case sv.Kind == catalog.KindOption && c.Parent == "":
			add(k, id, "parent", fmt.Sprintf("service %q is an option: its contract needs a parent contract", c.Service))
		case sv.Parent != "" && parent != nil && parent.Service != sv.Parent:
			add(k, id, "parent", fmt.Sprintf("service %q belongs under service %q, but the parent contract is for %q", c.Service, sv.Parent, parent.Service))
		}
		offered := versionValues(svc.Versions, func(v *catalog.ServiceVersion) []string { return v.Plans })
		for i, term := range c.Plans {
			if len(offered) > 0 && !slices.Contains(offered, term.Plan) {
				add(k, id, fmt.Sprintf("plans[%d].plan", i), fmt.Sprintf("service %q does not offer plan %q", c.Service, term.Plan))
			}
		}
	}
	for i, term := range c.Plans {
		if !tx.live(KindPlan, term.Plan) {
			add(k, id, fmt.Sprintf("plans[%d].plan", i), fmt.Sprintf("unknown plan %q", term.Plan))
			continue
		}
		if basic != nil {
			if cur, bad := tx.planCurrencyMismatch(term.Plan, basic.Currency); bad {
				add(k, id, fmt.Sprintf("plans[%d].plan", i),
					fmt.Sprintf("plan %q is priced in %s but the basic contract bills in %s", term.Plan, cur, basic.Currency))
			}
		}
	}
}

// anywhere is the zone whose civil day begins first (UTC+14): a start judged
// there has come no later than anywhere else.
var anywhere = time.FixedZone("UTC+14", 14*3600)

// checkInEffect refuses to delete a basic, service or discount contract that
// has taken effect: one whose start_date has come, in the time zone it is
// priced in, by now plus the ingest's future skew (a record may be dated
// that far ahead, and be rated under a contract starting then). Such a
// contract may have produced charges, which a delete would leave in
// rated_usage with nothing to re-price or correct them; it is cancelled or
// ended instead. A contract that starts later has no charges yet and may be
// deleted. The time zone is the basic contract's (a service contract's
// basic contract's; for a discount contract, which discounts by the day in
// the zone of each contract it discounts, the one of the customer's basic
// contracts whose day comes first); UTC+14 when none is known.
func (tx *Tx) checkInEffect(k Kind, id string, doc any) error {
	var (
		start catalog.Date
		zones []string
	)
	zoneOf := func(basicID string) {
		if v, ok := tx.Get(KindBasicContract, basicID); ok {
			zones = append(zones, v.(*catalog.BasicContract).TimeZone)
		}
	}
	switch d := doc.(type) {
	case *catalog.BasicContract:
		start, zones = d.Start, []string{d.TimeZone}
	case *catalog.ServiceContract:
		start = d.Start
		zoneOf(d.Basic)
	case *catalog.DiscountContract:
		start = d.Start
		ids, _ := tx.find(KindBasicContract, "customer", d.Customer, 1<<30)
		for _, b := range ids {
			zoneOf(b)
		}
	default:
		return nil
	}
	horizon := tx.s.opts.Now().Add(tx.s.opts.MaxFutureSkew)
	var (
		latest catalog.Date
		zone   string
	)
	for _, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil || z == "" {
			continue
		}
		if d := catalog.DateOf(horizon.In(loc)); zone == "" || d.After(latest) {
			latest, zone = d, z
		}
	}
	if zone == "" {
		latest, zone = catalog.DateOf(horizon.In(anywhere)), anywhere.String()
	}
	if start.After(latest) {
		return nil
	}
	return &InEffectError{Kind: k, ID: id, Start: start, Zone: zone}
}

// checkDelete refuses to delete an entity that live entities reference.
func (tx *Tx) checkDelete(k Kind, id string) error {
	var refs []Ref
	total := 0
	by := func(kk Kind, field string, ids []string, n int) {
		total += n
		for _, x := range ids {
			if len(refs) < maxRefs {
				refs = append(refs, Ref{Kind: kk, ID: x, Field: field})
			}
		}
	}
	byFacet := func(kk Kind, facet, field string) {
		ids, n := tx.find(kk, facet, id, maxRefs)
		by(kk, field, ids, n)
	}
	byScope := func(level string) {
		var ids []string
		n := 0
		tx.each(KindDiscountContract, func(dcID string, v any) {
			if s := v.(*catalog.DiscountContract).Scope; s.Level == level && s.Target == id {
				n++
				if len(ids) < maxRefs {
					ids = append(ids, dcID)
				}
			}
		})
		by(KindDiscountContract, "scope.target", ids, n)
	}
	switch k {
	case KindCustomer:
		byFacet(KindBasicContract, "customer", "customer")
		byFacet(KindServiceContract, "customer", "customer")
		byFacet(KindDiscountContract, "customer", "customer")
		byFacet(KindGroup, "member", "members")
	case KindBasicContract:
		byFacet(KindServiceContract, "basic_contract", "basic_contract")
	case KindServiceContract:
		byFacet(KindServiceContract, "parent", "parent")
		byScope("contract")
	case KindService:
		byFacet(KindServiceContract, "service", "service")
		byFacet(KindDiscountContract, "service", "service")
	case KindPlan:
		byFacet(KindServiceContract, "plan", "plans")
		byScope("plan")
	case KindFee:
		byScope("fee")
	case KindDiscountTable:
		byFacet(KindDiscountContract, "discount_table", "discount_table")
	}
	if total > 0 {
		return &ReferencedError{Kind: k, ID: id, By: refs, Total: total}
	}
	return nil
}

// find returns up to limit ids of live entities of kind k (as the
// transaction sees them) whose facet has value, and how many there are.
func (tx *Tx) find(k Kind, facetName, value string, limit int) ([]string, int) {
	var ids []string
	n := 0
	tx.ts.mu.RLock()
	tb := tx.ts.tables[k]
	c := tb.compile(Query{Terms: []Term{{Facet: facetName, Value: value}}})
	if !c.impossible {
		for i := range tb.recs {
			r := &tb.recs[i]
			if _, st := tx.staged[stageKey{k, r.id}]; st {
				continue
			}
			if c.match(tb, i) {
				n++
				if len(ids) < limit {
					ids = append(ids, r.id)
				}
			}
		}
	}
	tx.ts.mu.RUnlock()
	var f *facet
	for i := range specs[k].facets {
		if specs[k].facets[i].name == facetName {
			f = &specs[k].facets[i]
		}
	}
	for _, key := range tx.order {
		st := tx.staged[key]
		if key.kind != k || st.deleted {
			continue
		}
		if contains(f.values(st.val), value) {
			n++
			if len(ids) < limit {
				ids = append(ids, key.id)
			}
		}
	}
	return ids, n
}

// each calls fn for every live entity of kind k as the transaction sees it.
func (tx *Tx) each(k Kind, fn func(id string, v any)) {
	tx.ts.mu.RLock()
	tb := tx.ts.tables[k]
	type kv struct {
		id string
		v  any
	}
	var list []kv
	for i := range tb.recs {
		r := &tb.recs[i]
		if _, st := tx.staged[stageKey{k, r.id}]; st || r.deleted {
			continue
		}
		list = append(list, kv{r.id, r.val})
	}
	tx.ts.mu.RUnlock()
	for _, x := range list {
		fn(x.id, x.v)
	}
	for _, key := range tx.order {
		if st := tx.staged[key]; key.kind == k && !st.deleted {
			fn(key.id, st.val)
		}
	}
}

// mastersIndex remembers which code each catalogue position holds.
type mastersIndex map[string][]string // "plans" -> codes by index

var catalogueFields = map[string]Kind{"services": KindService, "plans": KindPlan, "fees": KindFee,
	"elements": KindElement, "rate_tables": KindRateTable, "discount_tables": KindDiscountTable}

// masters builds the tenant's masters as a catalogue, committed only or
// with the staged changes.
func (tx *Tx) masters(withStaged bool) (*catalog.Catalogue, mastersIndex) {
	c := &catalog.Catalogue{}
	idx := mastersIndex{}
	gather := func(k Kind, field string, appendDoc func(any)) {
		tx.ts.mu.RLock()
		tb := tx.ts.tables[k]
		for i := range tb.recs {
			r := &tb.recs[i]
			if withStaged {
				if _, st := tx.staged[stageKey{k, r.id}]; st {
					continue
				}
			}
			if !r.deleted {
				appendDoc(r.val)
				idx[field] = append(idx[field], r.id)
			}
		}
		tx.ts.mu.RUnlock()
		if withStaged {
			for _, key := range tx.order {
				if st := tx.staged[key]; key.kind == k && !st.deleted {
					appendDoc(st.val)
					idx[field] = append(idx[field], key.id)
				}
			}
		}
	}
	gather(KindService, "services", func(v any) { c.Services = append(c.Services, *v.(*catalog.Service)) })
	gather(KindPlan, "plans", func(v any) { c.Plans = append(c.Plans, *v.(*catalog.Plan)) })
	gather(KindFee, "fees", func(v any) { c.Fees = append(c.Fees, *v.(*catalog.Fee)) })
	gather(KindElement, "elements", func(v any) { c.Elements = append(c.Elements, *v.(*catalog.Element)) })
	gather(KindRateTable, "rate_tables", func(v any) { c.RateTables = append(c.RateTables, *v.(*catalog.RateTable)) })
	gather(KindDiscountTable, "discount_tables", func(v any) { c.DiscountTables = append(c.DiscountTables, *v.(*catalog.DiscountTable)) })
	return c, idx
}

// masterErrors validates a masters catalogue and names each problem by
// entity instead of position.
func masterErrors(c *catalog.Catalogue, idx mastersIndex) []FieldError {
	err := c.Validate()
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := make([]FieldError, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		fe := FieldError{Field: f.Field, Reason: f.Reason}
		if open := strings.IndexByte(f.Field, '['); open > 0 {
			if close := strings.IndexByte(f.Field, ']'); close > open {
				if k, ok := catalogueFields[f.Field[:open]]; ok {
					if i, err := strconv.Atoi(f.Field[open+1 : close]); err == nil && i < len(idx[f.Field[:open]]) {
						fe.Kind, fe.ID = k, idx[f.Field[:open]][i]
						fe.Field = strings.TrimPrefix(f.Field[close+1:], ".")
					}
				}
			}
		}
		out = append(out, fe)
	}
	return out
}

// checkMasters reports the problems the staged changes introduce into the
// masters as a whole (unknown references, versions that no longer cover a
// referencing version, ...), ignoring problems that existed before. It
// returns the entities such problems are found in that the transaction did
// not itself write (for a delete: what still references it).
func (tx *Tx) checkMasters(add func(Kind, string, string, string)) ([]Ref, error) {
	before := map[FieldError]bool{}
	for _, fe := range masterErrors(tx.masters(false)) {
		before[fe] = true
	}
	var broken []Ref
	for _, fe := range masterErrors(tx.masters(true)) {
		if before[fe] {
			continue
		}
		if st, ok := tx.staged[stageKey{fe.Kind, fe.ID}]; ok && !st.deleted {
			add(fe.Kind, fe.ID, fe.Field, fe.Reason)
			continue
		}
		broken = append(broken, Ref{Kind: fe.Kind, ID: fe.ID, Field: fe.Field})
		add(fe.Kind, fe.ID, fe.Field, fe.Reason)
	}
	return broken, nil
}
