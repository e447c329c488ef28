package pricing

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// Engine is a tenant's compiled catalogue and contracts: everything needed to
// price an event without I/O. It is immutable and safe for concurrent use.
type Engine struct {
	tenant    string
	customers map[string]*customer
	contracts map[string]*contract
	// noFast forces the decimal path (the reference the fast path is tested
	// against).
	noFast bool
	slab   []customer // customers are allocated in blocks while compiling
}

type customer struct {
	id        string
	contracts []*contract
	discounts []*discount // ordered by (order, id); at most 64
}

type basic struct {
	id         string
	loc        *time.Location
	closingDay int
	currency   string
	places     int32
	mode       money.Mode
	start, end int32 // civil day numbers, inclusive
	// cycle is the billing period's length ("" is monthly); weekStart the
	// first day of weekly periods and of weekly fees' weeks.
	cycle     uint8 // cycleMonthly, cycleWeekly or cycleDaily
	weekStart time.Weekday
}

type contract struct {
	id         string
	customer   string
	service    string
	basic      *basic
	start, end int32
	quantity   int64
	terms      []term
}

type term struct {
	start, end int32
	plan       *plan
}

// span is a master version's validity as Unix nanoseconds [from, to).
type span struct{ from, to int64 }

func (s span) contains(t int64) bool { return t >= s.from && t < s.to }

func spanOf(v catalog.Validity) span {
	s := span{from: v.ValidFrom.UnixNano(), to: math.MaxInt64}
	if v.ValidTo != nil {
		s.to = v.ValidTo.UnixNano()
	}
	return s
}

type plan struct {
	code     string
	versions []*planVersion
}

type planVersion struct {
	span
	roundLine bool
	// skipUnmatched: a fee none of whose rates entries matches a record
	// does not apply to it (unmatched_rates skip).
	skipUnmatched bool
	// idleMinimum: fee minimums are due for periods without usage too
	// (minimum_without_usage; IdleMinimums).
	idleMinimum bool
	commitment  *decimal.Decimal // minimum spend per period (TrueUp)
	// precision: lines at this many decimal places, rounded to the
	// currency by the receivable (-1: the currency's, rounding point line
	// or period).
	precision int32
	fees      []*fee
	byElement map[string][]*fee // metered fees by any element they meter in any version
	group     uint8             // rating group (groupStartDate, …; 0: billing period)
}

type fee struct {
	code     string
	versions []*feeVersion
}

type feeVersion struct {
	span
	metered bool
	element *element
	rates   []rateChoice
	// capUnits: the elements the fee's capacity rate tables take peaks of
	// (besides its own element), in any version.
	capUnits []string
	split    []string
	min      *bound
	max      *bound

	// fixed fees
	amount     decimal.Decimal
	recurrence catalog.Recurrence
	proration  catalog.Proration
	timing     catalog.Timing
}

// bound is a fee-level minimum or maximum, exact and (when it fits) at the
// fast path's amount scale.
type bound struct {
	d    decimal.Decimal
	fast u128
	ok   bool
}

type rateChoice struct {
	match    []attr // sorted by key
	table    *rateTable
	min, max *bound // the entry's amount bounds (charge-level min/max)
}

type attr struct{ key, value string }

type element struct {
	code     string
	versions []*elementVersion
}

type elementVersion struct {
	span
	agg        catalog.Aggregation
	aggCode    uint8
	uniqueAttr string
	timeUnit   TimeUnit // time_weighted
	round      *quantityRounding
}

type quantityRounding struct {
	inc     decimal.Decimal
	incFast uint64
	fast    bool
	mode    money.Mode
	record  bool // per record, else per period
}

type rateTable struct {
	code     string
	versions []*rateVersion
}

// num is a catalogue number with its fixed-point form when it has one.
type num struct {
	d    decimal.Decimal
	raw  uint64 // d × 10^9
	fast bool
}

func newNum(d decimal.Decimal) num {
	raw, ok := fixedPrice(d)
	return num{d: d, raw: raw, fast: ok}
}

type tierSpec struct {
	from, upTo num
	open       bool
	unit, flat num
	flatAmt    u128   // flat × 10^9: the flat fee at the amount scale
	min, max   *bound // the tier's amount bounds (tier-level min/max)
}

type packageSpec struct {
	size, price, free num
	priceAmt          u128 // price at the amount scale
	up                bool
}

type overageSpec struct{ included, unit num }

type percentageSpec struct {
	rate, fee, freeAmount num
	freeTx                int64
	min, max              *decimal.Decimal
}

type rateVersion struct {
	span
	model catalog.Model
	unit  num
	tiers []tierSpec
	pkg   *packageSpec
	over  *overageSpec
	pct   *percentageSpec
	// capacity: the tiers chosen by the units' peaks (model capacity).
	capacity *capacitySpec
	fast     bool // the model can be priced on the fixed-point path
	// fromBounds: tier bounds are inclusive lower ends (tier_bounds from).
	fromBounds bool
	// closed: the last tier has an up_to and nothing prices beyond it; a
	// quantity beyond limit is unrated (above_last_tier).
	closed bool
	limit  num
}

type discountTable struct {
	code     string
	versions []*discountVersion
}

type discountVersion struct {
	span
	percentage bool
	byAmount   bool
	tiers      []catalog.DiscountTier
	credit     bool
}

type discount struct {
	id         string
	order      int
	start, end int32
	service    string // only charges of service contracts of this service
	level      string // customer, contract, plan or fee: narrows within the service
	target     string
	table      *discountTable
}

// MaxDiscountsPerCustomer bounds a customer's discount contracts (the engine
// keeps the applicable ones of a charge in a 64-bit mask).
const MaxDiscountsPerCustomer = 64

// Compile builds an engine from a catalogue with its contracts. The
// catalogue should have passed Validate; Compile still refuses unknown
// references rather than guess.
func Compile(c *catalog.Catalogue) (*Engine, error) {
	e := &Engine{tenant: c.Tenant, customers: make(map[string]*customer, len(c.BasicContracts)),
		contracts: make(map[string]*contract, len(c.ServiceContracts))}

	elements := make(map[string]*element, len(c.Elements))
	for i := range c.Elements {
		el, err := compileElement(&c.Elements[i])
		if err != nil {
			return nil, err
		}
		elements[el.code] = el
	}
	tables := make(map[string]*rateTable, len(c.RateTables))
	for i := range c.RateTables {
		rt := compileRateTable(&c.RateTables[i])
		tables[rt.code] = rt
	}
	discountTables := make(map[string]*discountTable, len(c.DiscountTables))
	for i := range c.DiscountTables {
		d := &c.DiscountTables[i]
		dt := &discountTable{code: d.Code}
		for _, v := range d.Versions {
			tiers := append([]catalog.DiscountTier(nil), v.Tiers...)
			sort.SliceStable(tiers, func(a, b int) bool { return tiers[a].From.LessThan(tiers[b].From) })
			dt.versions = append(dt.versions, &discountVersion{span: spanOf(v.Validity),
				percentage: v.Kind == catalog.DiscountPercentage, byAmount: v.Basis == catalog.BasisAmount,
				tiers: tiers, credit: v.Credit})
		}
		sortSpans(dt.versions)
		discountTables[dt.code] = dt
	}
	fees := make(map[string]*fee, len(c.Fees))
	for i := range c.Fees {
		f, err := compileFee(&c.Fees[i], elements, tables)
		if err != nil {
			return nil, err
		}
		fees[f.code] = f
	}
	plans := make(map[string]*plan, len(c.Plans))
	for i := range c.Plans {
		p := &c.Plans[i]
		cp := &plan{code: p.Code}
		for _, v := range p.Versions {
			pv := &planVersion{span: spanOf(v.Validity), roundLine: v.RoundingPoint == catalog.RoundLine,
				skipUnmatched: v.UnmatchedRates == catalog.UnmatchedSkip, idleMinimum: v.MinimumWithoutUsage, commitment: v.Commitment,
				precision: -1, byElement: map[string][]*fee{}, group: groupCodes[v.RatingGroup]}
			if v.RoundingPoint == catalog.RoundReceivable {
				pv.precision = catalog.MaxDecimalPlaces
				if v.Precision != nil {
					pv.precision = *v.Precision
				}
			}
			for _, code := range v.Fees {
				f := fees[code]
				if f == nil {
					return nil, fmt.Errorf("plan %s: unknown fee %q", p.Code, code)
				}
				pv.fees = append(pv.fees, f)
				seen := map[string]bool{}
				for _, fv := range f.versions {
					if !fv.metered {
						continue
					}
					for _, el := range append([]string{fv.element.code}, fv.capUnits...) {
						if !seen[el] {
							seen[el] = true
							pv.byElement[el] = append(pv.byElement[el], f)
						}
					}
				}
			}
			cp.versions = append(cp.versions, pv)
		}
		sortSpans(cp.versions)
		plans[cp.code] = cp
	}

	locations := map[string]*time.Location{}
	basics := make(map[string]*basic, len(c.BasicContracts))
	basicSlab := make([]basic, len(c.BasicContracts)) // one allocation for all
	for i := range c.BasicContracts {
		b := &c.BasicContracts[i]
		loc, ok := locations[b.TimeZone]
		if !ok {
			var err error
			if loc, err = time.LoadLocation(b.TimeZone); err != nil || b.TimeZone == "" {
				return nil, fmt.Errorf("basic contract %s: time zone %q: %w", b.ID, b.TimeZone, err)
			}
			locations[b.TimeZone] = loc
		}
		cur, err := money.LookupCurrency(b.Currency)
		if err != nil {
			return nil, fmt.Errorf("basic contract %s: %w", b.ID, err)
		}
		mode, err := money.ParseMode(string(b.Rounding))
		if err != nil {
			return nil, fmt.Errorf("basic contract %s: %w", b.ID, err)
		}
		if b.ClosingDay < 0 || b.ClosingDay > 28 {
			return nil, fmt.Errorf("basic contract %s: closing day %d", b.ID, b.ClosingDay)
		}
		start, end := dayRange(b.DateRange)
		ws, ok := catalog.Weekday(b.WeekStart)
		if !ok {
			return nil, fmt.Errorf("basic contract %s: week start %q", b.ID, b.WeekStart)
		}
		cycle := cycleMonthly
		switch b.BillingPeriod {
		case catalog.PeriodWeekly:
			cycle = cycleWeekly
		case catalog.PeriodDaily:
			cycle = cycleDaily
		}
		basicSlab[i] = basic{id: b.ID, loc: loc, closingDay: b.ClosingDay, currency: cur.Code, places: cur.Places,
			mode: mode, start: start, end: end, cycle: cycle, weekStart: ws}
		basics[b.ID] = &basicSlab[i]
	}

	contractSlab := make([]contract, len(c.ServiceContracts))
	nTerms := 0
	for i := range c.ServiceContracts {
		nTerms += len(c.ServiceContracts[i].Plans)
	}
	termSlab := make([]term, 0, nTerms)
	ptrSlab := make([]*contract, len(c.ServiceContracts))
	for i := range c.ServiceContracts {
		s := &c.ServiceContracts[i]
		b := basics[s.Basic]
		if b == nil {
			return nil, fmt.Errorf("service contract %s: unknown basic contract %q", s.ID, s.Basic)
		}
		start, end := dayRange(s.DateRange)
		k := &contractSlab[i]
		*k = contract{id: s.ID, customer: s.Customer, service: s.Service, basic: b, start: start, end: end, quantity: int64(s.Quantity)}
		if k.quantity == 0 {
			k.quantity = 1
		}
		first := len(termSlab)
		for _, t := range s.Plans {
			p := plans[t.Plan]
			if p == nil {
				return nil, fmt.Errorf("service contract %s: unknown plan %q", s.ID, t.Plan)
			}
			ts, te := dayRange(t.DateRange)
			termSlab = append(termSlab, term{start: ts, end: te, plan: p})
		}
		k.terms = termSlab[first:len(termSlab):len(termSlab)]
		if len(k.terms) > 1 {
			slices.SortFunc(k.terms, func(a, b term) int { return cmp.Compare(a.start, b.start) })
		}
		if _, dup := e.contracts[s.ID]; dup {
			return nil, fmt.Errorf("service contract %s defined twice", s.ID)
		}
		e.contracts[s.ID] = k
		cu := e.customer(s.Customer)
		if cu.contracts == nil {
			ptrSlab[i] = k // a customer's first contract: no allocation
			cu.contracts = ptrSlab[i : i+1 : i+1]
		} else {
			cu.contracts = append(cu.contracts, k)
		}
	}
	e.slab = nil

	for i := range c.DiscountContracts {
		d := &c.DiscountContracts[i]
		dt := discountTables[d.DiscountTable]
		if dt == nil {
			return nil, fmt.Errorf("discount contract %s: unknown discount table %q", d.ID, d.DiscountTable)
		}
		start, end := dayRange(d.DateRange)
		level := d.Scope.Level
		if level == "" {
			level = "customer"
		}
		cu := e.customer(d.Customer)
		cu.discounts = append(cu.discounts, &discount{id: d.ID, order: d.Order, start: start, end: end,
			service: d.Service, level: level, target: d.Scope.Target, table: dt})
	}
	for _, cu := range e.customers {
		if len(cu.discounts) > MaxDiscountsPerCustomer {
			return nil, fmt.Errorf("customer %s has %d discount contracts; at most %d", cu.id, len(cu.discounts), MaxDiscountsPerCustomer)
		}
		sort.Slice(cu.discounts, func(a, b int) bool {
			x, y := cu.discounts[a], cu.discounts[b]
			if x.order != y.order {
				return x.order < y.order
			}
			return x.id < y.id
		})
	}
	return e, nil
}

func (e *Engine) customer(id string) *customer {
	cu := e.customers[id]
	if cu == nil {
		if len(e.slab) == 0 {
			e.slab = make([]customer, 4096)
		}
		cu, e.slab = &e.slab[0], e.slab[1:]
		cu.id = id
		e.customers[id] = cu
	}
	return cu
}

// Tenant is the tenant the catalogue belongs to.
func (e *Engine) Tenant() string { return e.tenant }

func sortSpans[V interface{ spanStart() int64 }](vs []V) {
	sort.SliceStable(vs, func(a, b int) bool { return vs[a].spanStart() < vs[b].spanStart() })
}

func (s span) spanStart() int64 { return s.from }

// versionAt returns the version whose span contains t, or nil.
func versionAt[V interface{ contains(int64) bool }](vs []V, t int64) V {
	for _, v := range vs {
		if v.contains(t) {
			return v
		}
	}
	var zero V
	return zero
}

func compileElement(el *catalog.Element) (*element, error) {
	out := &element{code: el.Code}
	for _, v := range el.Versions {
		ev := &elementVersion{span: spanOf(v.Validity), agg: v.Aggregation, aggCode: aggCodes[v.Aggregation], uniqueAttr: v.UniqueAttribute}
		switch v.TimeUnit {
		case "day":
			ev.timeUnit = UnitDay
		case "period":
			ev.timeUnit = UnitPeriod
		}
		if r := v.Rounding; r != nil {
			mode, err := money.ParseMode(r.Mode)
			if err != nil {
				return nil, fmt.Errorf("element %s: rounding: %w", el.Code, err)
			}
			if !r.Increment.IsPositive() {
				return nil, fmt.Errorf("element %s: rounding increment must be positive", el.Code)
			}
			inc, ok := fixedPrice(r.Increment)
			ev.round = &quantityRounding{inc: r.Increment, incFast: inc, fast: ok && inc > 0, mode: mode, record: r.Scope == "record"}
		}
		out.versions = append(out.versions, ev)
	}
	sortSpans(out.versions)
	return out, nil
}

func compileRateTable(rt *catalog.RateTable) *rateTable {
	out := &rateTable{code: rt.Code}
	for i := range rt.Versions {
		v := &rt.Versions[i]
		rv := &rateVersion{span: spanOf(v.Validity), model: v.Model}
		switch v.Model {
		case catalog.ModelPerUnit:
			if v.UnitPrice != nil {
				rv.unit = newNum(*v.UnitPrice)
			}
			rv.fast = rv.unit.fast
		case catalog.ModelGraduated, catalog.ModelVolume:
			rv.fast = true
			prev := newNum(decimal.Zero)
			for _, t := range v.Tiers {
				ts := tierSpec{from: prev, unit: newNum(t.UnitPrice), flat: newNum(t.FlatFee), open: t.UpTo == nil,
					min: newBound(t.Minimum), max: newBound(t.Maximum)}
				if t.UpTo != nil {
					ts.upTo = newNum(*t.UpTo)
					prev = ts.upTo
				}
				ts.flatAmt = mul64(ts.flat.raw, qtyOne)
				rv.fast = rv.fast && ts.from.fast && (ts.open || ts.upTo.fast) && ts.unit.fast && ts.flat.fast
				rv.tiers = append(rv.tiers, ts)
			}
			rv.fromBounds = v.TierBounds == catalog.BoundsFrom
			if n := len(rv.tiers); n > 0 && !rv.tiers[n-1].open {
				if a := v.AboveLastTier; a != nil {
					// The overage rule is an open tier without a flat fee.
					ts := tierSpec{from: prev, unit: newNum(a.UnitPrice), flat: newNum(decimal.Zero), open: true}
					rv.fast = rv.fast && ts.unit.fast
					rv.tiers = append(rv.tiers, ts)
				} else {
					rv.closed, rv.limit = true, prev
				}
			}
		case catalog.ModelPackage:
			if p := v.Package; p != nil {
				ps := &packageSpec{size: newNum(p.Size), price: newNum(p.Price), free: newNum(p.FreeUnits), up: p.Rounding == "up"}
				ps.priceAmt = mul64(ps.price.raw, qtyOne)
				rv.pkg = ps
				rv.fast = ps.size.fast && ps.size.raw > 0 && ps.price.fast && ps.free.fast
			}
		case catalog.ModelOverage:
			if o := v.Overage; o != nil {
				rv.over = &overageSpec{included: newNum(o.Included), unit: newNum(o.UnitPrice)}
				rv.fast = rv.over.included.fast && rv.over.unit.fast
			}
		case catalog.ModelPercentage:
			if p := v.Percentage; p != nil {
				rv.pct = &percentageSpec{rate: newNum(p.Rate), fee: newNum(p.FixedFee), freeAmount: newNum(p.FreeAmount),
					freeTx: p.FreeTransactions, min: p.MinPerTransaction, max: p.MaxPerTransaction}
			}
			// Percentage is priced per transaction in decimals.
		case catalog.ModelCapacity:
			if c := v.Capacity; c != nil {
				rv.capacity, rv.fast = compileCapacity(c)
				rv.closed = true // peaks fitting no tier are unrated (checkLimit)
			}
		}
		out.versions = append(out.versions, rv)
	}
	sortSpans(out.versions)
	return out
}

func compileFee(f *catalog.Fee, elements map[string]*element, tables map[string]*rateTable) (*fee, error) {
	out := &fee{code: f.Code}
	for i := range f.Versions {
		v := &f.Versions[i]
		fv := &feeVersion{span: spanOf(v.Validity), metered: v.Kind == catalog.FeeMetered,
			recurrence: v.Recurrence, proration: v.Proration, timing: v.Timing}
		if v.Amount != nil {
			fv.amount = *v.Amount
		}
		if fv.metered {
			fv.element = elements[v.Element]
			if fv.element == nil {
				return nil, fmt.Errorf("fee %s: unknown element %q", f.Code, v.Element)
			}
			if len(v.SplitBy) > catalog.MaxSplitBy {
				return nil, fmt.Errorf("fee %s: split_by has more than %d attributes", f.Code, catalog.MaxSplitBy)
			}
			fv.split = v.SplitBy
			for _, r := range v.Rates {
				rt := tables[r.RateTable]
				if rt == nil {
					return nil, fmt.Errorf("fee %s: unknown rate table %q", f.Code, r.RateTable)
				}
				rc := rateChoice{table: rt, min: newBound(r.Minimum), max: newBound(r.Maximum)}
				for k, val := range r.Match {
					rc.match = append(rc.match, attr{k, val})
				}
				sort.Slice(rc.match, func(a, b int) bool { return rc.match[a].key < rc.match[b].key })
				fv.rates = append(fv.rates, rc)
				for _, rv := range rt.versions {
					if rv.capacity == nil {
						continue
					}
					for _, u := range rv.capacity.units {
						if u != fv.element.code && !slices.Contains(fv.capUnits, u) {
							fv.capUnits = append(fv.capUnits, u)
						}
					}
				}
			}
			fv.min = newBound(v.Minimum)
			fv.max = newBound(v.Maximum)
		}
		out.versions = append(out.versions, fv)
	}
	sortSpans(out.versions)
	return out, nil
}

func newBound(d *decimal.Decimal) *bound {
	if d == nil {
		return nil
	}
	b := &bound{d: *d}
	b.fast, b.ok = u128Of(*d, amountScale)
	return b
}

// dayRange returns a date range as inclusive civil day numbers; an open end
// is the largest day number.
func dayRange(r catalog.DateRange) (int32, int32) {
	end := int32(math.MaxInt32)
	if r.End != nil {
		end = dayNumber(r.End.Year, r.End.Month, r.End.Day)
	}
	return dayNumber(r.Start.Year, r.Start.Month, r.Start.Day), end
}
