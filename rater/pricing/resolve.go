package pricing

import (
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// Key identifies one running charge: a fee of a customer's service contract,
// the rate table the event's attributes chose, the values of the fee's
// split_by attributes and the billing period. Every event with the same key
// adds to the same State. Key is comparable (usable as a map key) and is
// built without allocating.
type Key struct {
	Tenant   string
	Customer string
	Contract string
	Fee      string
	Rate     string                     // rate table code
	Split    [catalog.MaxSplitBy]string // values of the fee's split_by attributes, in order
	NSplit   uint8                      // how many of Split are used
	Period   PeriodID                   // billing period
	// Group is the rating group within the period (the plan's
	// rating_group): empty for billing_period, the civil day (YYYY-MM-DD)
	// for usage_start_date, the record's id for usage_record, the import
	// job (empty for API records) for upload.
	Group string
}

// AppendBinary appends an unambiguous encoding of the key (each field
// length-prefixed), for use in storage keys.
func (k *Key) AppendBinary(b []byte) []byte {
	for _, s := range [...]string{k.Tenant, k.Customer, k.Contract, k.Fee, k.Rate} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, k.NSplit)
	for _, s := range k.Split[:k.NSplit] {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(k.Period))
	if k.Group != "" { // absent for billing_period: the keys of before
		b = binary.AppendUvarint(b, uint64(len(k.Group)))
		b = append(b, k.Group...)
	}
	return b
}

// Item names the charged item for people: the fee code and, for split fees,
// the split values, e.g. "transfer[ap-northeast-1]".
func (k *Key) Item() string {
	item := k.Fee
	if k.NSplit != 0 {
		item += "[" + strings.Join(k.Split[:k.NSplit], ",") + "]"
	}
	if k.Group != "" {
		item += "@" + k.Group // a rating group, e.g. transfer@2019-03-10
	}
	return item
}

// String renders tenant/customer/contract/item/rate/period.
func (k Key) String() string {
	return k.Tenant + "/" + k.Customer + "/" + k.Contract + "/" + k.Item() + "/" + k.Rate + "/" + k.Period.String()
}

// localDay caches the event's civil day in the last time zone asked for.
type localDay struct {
	t    time.Time
	loc  *time.Location
	y    int
	m    time.Month
	d    int
	day  int32
	done bool
}

func (l *localDay) in(loc *time.Location) int32 {
	if !l.done || loc != l.loc {
		l.y, l.m, l.d = l.t.In(loc).Date()
		l.day, l.loc, l.done = dayNumber(l.y, l.m, l.d), loc, true
	}
	return l.day
}

// Resolve finds the charges an event is priced under, appending them to
// buf[:0] (pass a reused buffer to avoid allocating): the customer's service
// contract active on the event's civil day in its basic contract's time
// zone (the one the event names, or the only one whose plan meters the
// element), the price plan of that day, the plan version valid at the event's
// time and each of its metered fees on the event's element, with the fee,
// element and rate-table versions valid at the event's time and the most
// specific rates entry matching the event's attributes. An event is priced
// under all of them or none: the error is an *Unrated with the reason.
func (e *Engine) Resolve(ev *schemas.UsageEvent, buf []Charge) ([]Charge, error) {
	buf = buf[:0]
	cu := e.customers[ev.Customer]
	if cu == nil || len(cu.contracts) == 0 {
		return buf, unrated(schemas.ReasonUnknownCustomer, "customer %q has no service contract", ev.Customer)
	}
	t := ev.Time.UnixNano()
	ld := localDay{t: ev.Time}
	var (
		chosen     *contract
		chosenPlan *plan
		chosenPV   *planVersion
		candidates int
		named      bool
		active     bool
		planned    bool
	)
	for _, k := range cu.contracts {
		if ev.Contract != "" && k.id != ev.Contract {
			continue
		}
		named = true
		day := ld.in(k.basic.loc)
		if day < k.start || day > k.end || day < k.basic.start || day > k.basic.end {
			continue
		}
		active = true
		var p *plan
		for i := range k.terms {
			if tm := &k.terms[i]; day >= tm.start && day <= tm.end {
				p = tm.plan
				break
			}
		}
		if p == nil {
			continue
		}
		pv := versionAt(p.versions, t)
		if pv == nil {
			continue
		}
		planned = true
		if len(pv.byElement[ev.Element]) == 0 {
			continue
		}
		candidates++
		if candidates == 1 {
			chosen, chosenPlan, chosenPV = k, p, pv
		}
	}
	switch {
	case ev.Contract != "" && !named:
		return buf, unrated(schemas.ReasonNoContract, "contract %q is not a service contract of customer %q", ev.Contract, ev.Customer)
	case candidates > 1:
		return buf, unrated(schemas.ReasonAmbiguousContract, "%d service contracts of customer %q meter element %q on that day; the record must name its contract", candidates, ev.Customer, ev.Element)
	case candidates == 1:
	case !active:
		return buf, unrated(schemas.ReasonNoContract, "customer %q has no service contract active on %s", ev.Customer, dateOf(ld.day))
	case !planned:
		return buf, unrated(schemas.ReasonNoPlan, "no price plan (or plan version) applies to customer %q at %s", ev.Customer, ev.Time.Format(time.RFC3339))
	default:
		return buf, unrated(schemas.ReasonUnknownElement, "no fee of the customer's price plan meters element %q", ev.Element)
	}

	b := chosen.basic
	day := ld.in(b.loc)
	period := b.periodOf(ld.y, ld.m, ld.d)
	skipped := false
	for _, f := range chosenPV.byElement[ev.Element] {
		fv := versionAt(f.versions, t)
		if fv == nil {
			return buf[:0], unrated(schemas.ReasonNoRate, "fee %q has no version at %s", f.code, ev.Time.Format(time.RFC3339))
		}
		// A capacity fee is also priced by the records of its tables'
		// other units' elements.
		capUnit := fv.metered && fv.element.code != ev.Element && slices.Contains(fv.capUnits, ev.Element)
		if !fv.metered || fv.element.code != ev.Element && !capUnit {
			continue // this fee meters another element at that time
		}
		elv := capacityElement
		if !capUnit {
			if elv = versionAt(fv.element.versions, t); elv == nil {
				return buf[:0], unrated(schemas.ReasonNoRate, "element %q has no version at %s", ev.Element, ev.Time.Format(time.RFC3339))
			}
		}
		if chosenPV.skipUnmatched && !anyRateMatches(fv.rates, ev.Attributes) {
			skipped = true // a fee restricted to other attributes
			continue
		}
		rc, err := chooseRate(fv.rates, ev.Attributes, f.code)
		if err != nil {
			return buf[:0], err
		}
		rv := versionAt(rc.table.versions, t)
		if rv == nil {
			return buf[:0], unrated(schemas.ReasonNoRate, "rate table %q has no version at %s", rc.table.code, ev.Time.Format(time.RFC3339))
		}
		unit := -1
		if rv.capacity != nil {
			if unit = rv.capacity.unit(ev.Element); unit < 0 {
				continue // the table in force does not take this element's peak
			}
			elv = capacityElement
		} else if capUnit {
			continue // a rate table of another model: only the fee's own element
		}
		agg := elv.aggCode
		if rv.model == catalog.ModelPercentage {
			agg = aggCodes[catalog.AggSum] // transactions: the running quantity is their sum
		} else if elv.agg == catalog.AggUniqueCount {
			if _, ok := ev.Attributes[elv.uniqueAttr]; !ok {
				return buf[:0], unrated(schemas.ReasonMissingAttribute, "element %q counts distinct values of attribute %q, which the record lacks", ev.Element, elv.uniqueAttr)
			}
		}
		buf = append(buf, Charge{})
		ch := &buf[len(buf)-1]
		ch.Key = Key{Tenant: e.tenant, Customer: ev.Customer, Contract: chosen.id, Fee: f.code, Rate: rc.table.code,
			NSplit: uint8(len(fv.split)), Period: period.ID}
		if ch.Key.Tenant == "" {
			ch.Key.Tenant = ev.Tenant
		}
		for i, a := range fv.split {
			ch.Key.Split[i] = ev.Attributes[a]
		}
		if g := chosenPV.group; g != 0 && rv.groupable() {
			ch.Key.Group = ratingGroup(g, ev, day)
		}
		ch.Period, ch.Currency, ch.Plan, ch.RoundLine = period, b.currency, chosenPlan.code, chosenPV.roundLine
		ch.places, ch.mode, ch.fee, ch.el, ch.agg, ch.rate, ch.discounts, ch.at = b.places, b.mode, fv, elv, agg, rv, cu.discounts, t
		ch.choice, ch.unit = rc, unit
		if chosenPV.precision >= 0 && chosenPV.precision > b.places {
			ch.places = chosenPV.precision // receivable: lines finer than the minor unit
		}
		for i, d := range cu.discounts {
			if day >= d.start && day <= d.end && d.applies(chosen, chosenPlan.code, f.code) {
				ch.discMask |= 1 << uint(i)
			}
		}
		ch.fast = !e.noFast && rv.fast && ch.discMask == 0
	}
	if len(buf) == 0 && skipped {
		return buf, unrated(schemas.ReasonNoRate, "no rates entry of any fee of plan %q on element %q matches the record's attributes", chosenPlan.code, ev.Element)
	}
	if len(buf) == 0 {
		return buf, unrated(schemas.ReasonUnknownElement, "no fee of the customer's price plan meters element %q at %s", ev.Element, ev.Time.Format(time.RFC3339))
	}
	return buf, nil
}

// applies reports whether the discount covers a charge of fee on plan under
// service contract k (its validity is checked by the caller). A discount
// contract with a service discounts only charges of service contracts of
// that service; its scope narrows that further (an empty scope is every
// charge of the customer's contracts of that service). One whose service
// the customer has no contract for discounts nothing. Without a service it
// is customer-wide: every service contract of the customer.
func (d *discount) applies(k *contract, plan, fee string) bool {
	if d.service != "" && d.service != k.service {
		return false
	}
	switch d.level {
	case "contract":
		return d.target == k.id
	case "plan":
		return d.target == plan
	case "fee":
		return d.target == fee
	}
	return true
}

// anyRateMatches reports whether some rates entry matches the attributes.
func anyRateMatches(rates []rateChoice, attrs map[string]string) bool {
	for i := range rates {
		ok := true
		for _, m := range rates[i].match {
			if v, has := attrs[m.key]; !has || v != m.value {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// chooseRate picks the rates entry whose match has the most keys, all equal
// to the event's attributes; an empty match is the default. Two equally
// specific matches are ambiguous: the record is not priced on a guess.
func chooseRate(rates []rateChoice, attrs map[string]string, feeCode string) (*rateChoice, error) {
	var best *rateChoice
	tie := false
	for i := range rates {
		rc := &rates[i]
		ok := true
		for _, m := range rc.match {
			if v, has := attrs[m.key]; !has || v != m.value {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		switch {
		case best == nil || len(rc.match) > len(best.match):
			best, tie = rc, false
		case len(rc.match) == len(best.match):
			tie = true
		}
	}
	if best == nil {
		return nil, unrated(schemas.ReasonNoRate, "no rates entry of fee %q matches the record's attributes", feeCode)
	}
	if tie {
		return nil, unrated(schemas.ReasonAmbiguousRate, "two rates entries of fee %q match the record's attributes equally well", feeCode)
	}
	return best, nil
}
