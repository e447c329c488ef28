package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// The two tenants: FlatTenant is priced per unit by the price list file,
// TieredTenant by its catalogue's graduated tiers.
const (
	FlatTenant   = "chaos-flat"
	TieredTenant = "chaos-tiered"
)

// WorldStart is the harness's world clock at the moment the harness starts:
// every process gets KAKIN_CLOCK_OFFSET so that its clock reads this, and
// every event is dated in the two months before it, whatever day it runs.
var WorldStart = time.Date(2026, time.November, 25, 12, 0, 0, 0, time.UTC)

// eventsFrom and eventsTo bound the event times: October and most of
// November 2026 in Tokyo, two billing periods, all inside the dedupe window.
var (
	eventsFrom = time.Date(2026, time.October, 1, 0, 0, 0, 0, time.UTC)
	eventsTo   = time.Date(2026, time.November, 24, 0, 0, 0, 0, time.UTC)
)

// PriceList is the price list file of the flat tenant.
const PriceList = `{"tenants": {
  "chaos-flat": {"currency": "JPY", "rounding": "half_up", "time_zone": "Asia/Tokyo", "any_customer": true,
                 "prices": {"api_calls": "0.037", "transfer_gb": "9.81", "sms": "3"}}
}}`

var flatElements = []string{"api_calls", "transfer_gb", "sms"}

// tieredMasters: graduated calls, 1 yen each up to 2,000 a month, 0.5 up to
// 20,000, 0.1 up to 200,000, 0.07 up to 1,000,000, 0.03 up to 3,000,000,
// then 0.013, rounded per period (so a customer-month's total is
// round(cost(Σ quantity)), whatever order its records were rated in). Any
// record counted twice, or lost, by the running state moves a total: by
// the price difference at the next boundary the period crosses, and through
// rounding. The boundaries reach across a long run's month (a customer-month
// of the long run is ~4 million calls), so a running total that goes wrong
// late in the month still crosses one: with only the first two boundaries, a
// lost state save late in the month moved totals by rounding alone (1 yen).
const tieredMasters = `
services: [{code: api, name: API, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: service}]}]
elements: [{code: calls, name: Calls, versions: [{valid_from: 2025-01-01T00:00:00Z, unit: call, aggregation: sum}]}]
rate_tables:
  - code: tiers
    name: Tiers
    versions:
      - valid_from: 2025-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 2000, unit_price: 1}, {up_to: 20000, unit_price: 0.5}, {up_to: 200000, unit_price: 0.1}, {up_to: 1000000, unit_price: 0.07}, {up_to: 3000000, unit_price: 0.03}, {unit_price: 0.013}]
fees: [{code: calls, name: Calls, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: metered, element: calls, rates: [{rate_table: tiers}]}]}]
plans: [{code: std, name: Std, versions: [{valid_from: 2025-01-01T00:00:00Z, type: metered, currency: JPY, rounding_point: period, fees: [calls]}]}]
`

// Customers per tenant.
const (
	flatCustomers   = 40
	tieredCustomers = 20
)

func customerName(tenant string, i int) string {
	if tenant == TieredTenant {
		return fmt.Sprintf("t-c%02d", i)
	}
	return fmt.Sprintf("f-c%03d", i)
}

// TieredCatalogue is the tiered tenant's catalogue file: the masters and a
// contract on plan std for each of its customers.
func TieredCatalogue() string {
	var b strings.Builder
	b.WriteString(tieredMasters)
	b.WriteString("basic_contracts:\n")
	for i := range tieredCustomers {
		id := customerName(TieredTenant, i)
		fmt.Fprintf(&b, "  - {id: b-%s, customer: %s, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}\n", id, id)
	}
	b.WriteString("service_contracts:\n")
	for i := range tieredCustomers {
		id := customerName(TieredTenant, i)
		fmt.Fprintf(&b, "  - {id: s-%s, customer: %s, basic_contract: b-%s, service: api, start_date: 2026-01-01, plans: [{plan: std, start_date: 2026-01-01}]}\n", id, id, id)
	}
	return b.String()
}

// recordKind is what the pipeline must do with a generated record.
type recordKind uint8

const (
	ratable   recordKind = iota
	invalid              // refused by ingest in the answer
	unratable            // accepted, then parked in usage_unrated
)

// record is one generated usage record.
type record struct {
	kind  recordKind
	line  string // the NDJSON line, sent byte for byte on every sending
	event schemas.UsageEvent
}

// Body is one request body of one tenant.
type Body struct {
	Tenant  string
	Data    []byte
	records []*record // in body order; re-sent records are the same pointers
	resends int       // records of the body that repeat one of an earlier body
}

// Shares of the generated traffic.
const (
	resendShare    = 0.05
	invalidShare   = 0.015
	unratableShare = 0.005
)

// generator makes one tenant's bodies, deterministically from its seed.
type generator struct {
	tenant string
	rng    *rand.Rand
	prefix string

	mu    sync.Mutex
	n     int
	prior []*record // valid and unratable records of earlier bodies
}

func newGenerator(tenant string, seed uint64) *generator {
	return &generator{tenant: tenant, rng: rand.New(rand.NewPCG(seed, seed^0x6368616f73)), prefix: fmt.Sprintf("s%d-", seed)}
}

// next returns the next body: 50–150 records, about 5 % of them exact
// re-sends of records of earlier bodies, 1.5 % invalid, 0.5 % unratable.
func (g *generator) next() *Body {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := &Body{Tenant: g.tenant}
	size := 50 + g.rng.IntN(101)
	var data strings.Builder
	var fresh []*record
	for range size {
		var r *record
		if len(g.prior) > 0 && g.rng.Float64() < resendShare {
			r = g.prior[g.rng.IntN(len(g.prior))]
			b.resends++
		} else {
			r = g.record()
			if r.kind != invalid {
				fresh = append(fresh, r)
			}
		}
		b.records = append(b.records, r)
		data.WriteString(r.line)
		data.WriteByte('\n')
	}
	g.prior = append(g.prior, fresh...)
	b.Data = []byte(data.String())
	return b
}

// record makes the next new record.
func (g *generator) record() *record {
	g.n++
	id := fmt.Sprintf("%s%s-%07d", g.prefix, g.tenant, g.n)
	cust := customerName(g.tenant, g.rng.IntN(map[bool]int{true: tieredCustomers, false: flatCustomers}[g.tenant == TieredTenant]))
	at := eventsFrom.Add(time.Duration(g.rng.Int64N(int64(eventsTo.Sub(eventsFrom))))).Truncate(time.Second)
	var element string
	var qty decimal.Decimal
	if g.tenant == TieredTenant {
		element, qty = "calls", decimal.New(1+g.rng.Int64N(4000), -1) // 0.1–400.0: short runs cross 20,000 a month too
	} else {
		element = flatElements[g.rng.IntN(len(flatElements))]
		qty = decimal.New(g.rng.Int64N(1_000_000), -int32(g.rng.IntN(4)))
	}
	r := &record{kind: ratable}
	switch u := g.rng.Float64(); {
	case u < invalidShare:
		r.kind = invalid
	case u < invalidShare+unratableShare:
		r.kind = unratable
		element = "gpu_hours" // priced by neither tenant
	}
	r.event = schemas.UsageEvent{Tenant: g.tenant, ID: id, Customer: cust, Element: element, Quantity: qty, Time: at}
	if r.kind == invalid {
		switch g.rng.IntN(3) {
		case 0: // a negative quantity
			r.line = fmt.Sprintf(`{"id":%q,"customer":%q,"element":%q,"quantity":"-%s","time":%q}`, id, cust, element, qty.Add(decimal.New(1, 0)), at.Format(time.RFC3339))
		case 1: // no customer
			r.line = fmt.Sprintf(`{"id":%q,"element":%q,"quantity":"%s","time":%q}`, id, element, qty, at.Format(time.RFC3339))
		default: // not a time
			r.line = fmt.Sprintf(`{"id":%q,"customer":%q,"element":%q,"quantity":"%s","time":"yesterday"}`, id, cust, element, qty)
		}
		return r
	}
	r.line = fmt.Sprintf(`{"id":%q,"customer":%q,"element":%q,"quantity":"%s","time":%q}`, id, cust, element, qty, at.Format(time.RFC3339))
	return r
}

// Expected is what ClickHouse must hold for one tenant, from the records the
// client was acknowledged.
type Expected struct {
	Records  map[string]bool            // acknowledged ids (ratable and unratable)
	Lines    int                        // rated lines
	Unrated  int                        // records parked unrated
	Totals   map[string]decimal.Decimal // "customer period" → Σ amount
	Resends  int                        // exact re-sends the client made on purpose
	Invalids int                        // records refused in the answer
}

// expect computes the expected state of tenant from its acknowledged
// records: the flat tenant with the price list, the tiered one with the
// pricing engine's batch recomputation (rater/pricing RatePeriod) of its
// catalogue.
func expect(tenant string, acked []*record, resends, invalids int, pl *pricelist.List, eng *pricing.Engine) (Expected, error) {
	e := Expected{Records: map[string]bool{}, Totals: map[string]decimal.Decimal{}, Resends: resends, Invalids: invalids}
	var events []schemas.UsageEvent
	for _, r := range acked {
		if e.Records[r.event.ID] {
			continue
		}
		e.Records[r.event.ID] = true
		events = append(events, r.event)
	}
	if tenant == FlatTenant {
		for i := range events {
			out := pl.Rate(&events[i], WorldStart)
			if out.Line == nil {
				e.Unrated++
				continue
			}
			e.Lines++
			k := events[i].Customer + " " + out.Line.Period
			e.Totals[k] = e.Totals[k].Add(out.Line.Amount)
		}
		return e, nil
	}
	batch := eng.RatePeriod(events)
	e.Unrated = len(batch.Unrated)
	e.Lines = len(batch.Lines)
	for _, l := range batch.Lines {
		k := l.Key.Customer + " " + l.Key.Period.String()
		e.Totals[k] = e.Totals[k].Add(l.Line.Decimal())
	}
	return e, nil
}

// compileTiered compiles the tiered tenant's catalogue file.
func compileTiered() (*pricing.Engine, error) {
	cat, err := catalog.Decode(strings.NewReader(TieredCatalogue()))
	if err != nil {
		return nil, fmt.Errorf("decode tiered catalogue: %w", err)
	}
	eng, err := pricing.Compile(cat)
	if err != nil {
		return nil, fmt.Errorf("compile tiered catalogue: %w", err)
	}
	return eng, nil
}
