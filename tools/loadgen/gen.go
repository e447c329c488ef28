package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Elements are the calculation elements the generator sends, in the order of
// their share of the traffic (see eventAt).
var Elements = [...]string{"api_calls", "storage_gb_hours", "transfer_gb", "sms"}

// ProbeElement is the element of latency probe events.
const ProbeElement = "sms"

// Options shape the traffic of one run.
type Options struct {
	RunID          string    // prefix of every customer and event id; [a-z0-9-] only
	Tenant         string    // the tenant the events are rated for
	Events         int       // unique events
	Batch          int       // records per request body
	Customers      int       // distinct load customers
	DuplicateShare float64   // extra re-sent records, as a fraction of Events
	Seed           uint64    // same seed, same traffic
	From, To       time.Time // event times fall in [From, To)
	// Engine, when set, is the tenant's compiled catalogue
	// (CompileCatalogue of TieredCatalogue): the expected totals are what
	// it gives for the run's events with running state, and the price list
	// is not used.
	Engine *pricing.Engine
}

// Batch is one request body and what it carries.
type Batch struct {
	Body       []byte // NDJSON, one record a line
	Unique     int    // first sendings of an event
	Duplicates int    // re-sendings of an event of an earlier batch, byte for byte
}

// Records is the number of records in the batch.
func (b Batch) Records() int { return b.Unique + b.Duplicates }

// Probe is one latency probe event, rated and counted like the load.
type Probe struct {
	Body     []byte
	ID       string
	Customer string
	Period   string // the billing period the rater files it under
}

// Expected is what ClickHouse must hold for a run once everything is rated.
type Expected struct {
	Lines       uint64                     // rated lines: unique events plus probes
	Duplicates  uint64                     // intentional re-sends
	PerCustomer map[string]decimal.Decimal // Σ rounded amount per customer
	Total       decimal.Decimal
}

// Generator produces the request bodies of a run and keeps its expected
// totals. Event i is a pure function of (seed, i), so a duplicate is the
// earlier record regenerated, byte for byte, without keeping it in memory.
// Next and Probe may be called from different goroutines.
type Generator struct {
	opt      Options
	prices   *pricelist.List
	names    []string // customer names by index
	probeCus string
	seed     uint64
	fromUnix int64
	span     uint64 // seconds

	mu         sync.Mutex
	dupRNG     *rand.Rand
	next       int // next unique event index
	dupTarget  int
	dupsSent   int
	probes     int
	lines      uint64
	perCust    []decimal.Decimal // by customer index
	has        []bool            // customer has at least one event (its total may round to 0)
	probeTotal decimal.Decimal
	ratedAt    time.Time
	events     []schemas.UsageEvent // with Options.Engine: every unique event and probe, in sending order
}

// NewGenerator checks o and that the price list prices every element the
// generator sends for this tenant and run.
func NewGenerator(o Options, pl *pricelist.List) (*Generator, error) {
	switch {
	case !ValidRunID(o.RunID):
		return nil, fmt.Errorf("run id %q: want 1-40 characters of a-z, 0-9, '-'", o.RunID)
	case !schemas.ValidTenant(o.Tenant):
		return nil, fmt.Errorf("tenant %q is malformed", o.Tenant)
	case o.Events < 1:
		return nil, errors.New("events must be at least 1")
	case o.Batch < 1:
		return nil, errors.New("batch must be at least 1")
	case o.Customers < 1:
		return nil, errors.New("customers must be at least 1")
	case !(o.DuplicateShare >= 0 && o.DuplicateShare <= 1):
		return nil, errors.New("duplicate share must be between 0 and 1")
	case !o.To.After(o.From):
		return nil, errors.New("event time window is empty")
	case pl == nil && o.Engine == nil:
		return nil, errors.New("no price list")
	}
	g := &Generator{
		opt:       o,
		prices:    pl,
		names:     make([]string, o.Customers),
		probeCus:  probeCustomer(o.RunID),
		seed:      mix64(o.Seed),
		fromUnix:  o.From.Unix(),
		span:      uint64(max(1, o.To.Unix()-o.From.Unix())),
		dupRNG:    rand.New(rand.NewPCG(o.Seed, o.Seed^0x6c6f616467656e)),
		dupTarget: int(math.Round(float64(o.Events) * o.DuplicateShare)),
		perCust:   make([]decimal.Decimal, o.Customers),
		has:       make([]bool, o.Customers),
		ratedAt:   clock.Now().UTC(),
	}
	g.names = customerNames(o.RunID, o.Customers)
	// Fail before sending anything if the tenant cannot price the traffic.
	for _, el := range Elements {
		ev := schemas.UsageEvent{Tenant: o.Tenant, ID: o.RunID + "-check", Customer: g.names[0],
			Element: el, Quantity: decimal.New(1, 0), Time: o.From}
		if o.Engine != nil {
			if _, err := o.Engine.Resolve(&ev, nil); err != nil {
				return nil, fmt.Errorf("catalogue cannot rate %s for customer %s: %w", el, ev.Customer, err)
			}
		} else if out := pl.Rate(&ev, g.ratedAt); out.Line == nil {
			return nil, fmt.Errorf("price list cannot rate %s for tenant %s: %s", el, o.Tenant, out.Unrated.Reason)
		}
	}
	return g, nil
}

// customerNames are the names of a run's load customers.
func customerNames(runID string, customers int) []string {
	names := make([]string, customers)
	width := max(4, len(strconv.Itoa(customers)))
	for i := range names {
		names[i] = fmt.Sprintf("%s-c%0*d", runID, width, i+1)
	}
	return names
}

// probeCustomer is the customer of a run's latency probes.
func probeCustomer(runID string) string { return runID + "-probe" }

// ValidRunID reports whether s can prefix ids and customer names and be
// matched with LIKE '<s>-%' without escaping.
func ValidRunID(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// CustomerName is the name of load customer i (0-based).
func (g *Generator) CustomerName(i int) string { return g.names[i] }

// ProbeCustomer is the customer of every probe event.
func (g *Generator) ProbeCustomer() string { return g.probeCus }

// DuplicateTarget is how many re-sent records the run carries in all.
func (g *Generator) DuplicateTarget() int { return g.dupTarget }

// Done reports whether every unique event and duplicate has been handed out.
func (g *Generator) Done() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.next == g.opt.Events && g.dupsSent == g.dupTarget
}

// Next appends the next request body to buf[:0]. Duplicates only repeat
// events of earlier batches, and are spread over the run so that exactly
// DuplicateTarget of them are sent. At the end it returns a Batch with no
// records.
func (g *Generator) Next(buf []byte) (Batch, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := Batch{Body: buf[:0]}
	pool := g.next // events of earlier batches: the ones a duplicate may repeat
	for b.Records() < g.opt.Batch {
		remU, remD := g.opt.Events-g.next, g.dupTarget-g.dupsSent
		if remU == 0 && remD == 0 {
			break
		}
		dup := pool > 0 && remD > 0 && (remU == 0 || g.dupRNG.Float64()*float64(remU+remD) < float64(remD))
		if dup {
			b.Body = g.appendEvent(b.Body, g.eventAt(g.dupRNG.IntN(pool)))
			b.Duplicates++
			g.dupsSent++
			continue
		}
		if remU == 0 { // only duplicates left but no earlier batch yet: end this one
			break
		}
		ev := g.eventAt(g.next)
		if err := g.expect(ev); err != nil {
			return Batch{}, err
		}
		b.Body = g.appendEvent(b.Body, ev)
		b.Unique++
		g.next++
	}
	return b, nil
}

// Probe builds the next probe event, timed at, and counts it in the expected
// totals.
func (g *Generator) Probe(buf []byte, at time.Time) (Probe, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.probes++
	id := g.opt.RunID + "-p" + strconv.Itoa(g.probes)
	at = at.UTC().Truncate(time.Second)
	ue := schemas.UsageEvent{Tenant: g.opt.Tenant, ID: id, Customer: g.probeCus, Element: ProbeElement,
		Quantity: decimal.New(1, 0), Time: at}
	var period string
	if g.opt.Engine != nil {
		cs, err := g.opt.Engine.Resolve(&ue, nil)
		if err != nil {
			return Probe{}, fmt.Errorf("catalogue cannot rate probe %s: %w", id, err)
		}
		period = cs[0].Period.ID.String()
		g.events = append(g.events, ue)
	} else {
		out := g.prices.Rate(&ue, g.ratedAt)
		if out.Line == nil {
			return Probe{}, fmt.Errorf("price list cannot rate probe %s: %s", id, out.Unrated.Reason)
		}
		g.probeTotal = g.probeTotal.Add(out.Line.Amount)
		g.lines++
		period = out.Line.Period
	}
	body := append(buf[:0], `{"id":"`...)
	body = append(body, id...)
	body = append(body, `","customer":"`...)
	body = append(body, g.probeCus...)
	body = append(body, `","element":"`+ProbeElement+`","quantity":"1","time":"`...)
	body = at.AppendFormat(body, time.RFC3339)
	body = append(body, "\"}\n"...)
	return Probe{Body: body, ID: id, Customer: g.probeCus, Period: period}, nil
}

// Expected returns the totals ClickHouse must hold for what was handed out so
// far.
func (g *Generator) Expected() Expected {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := Expected{Lines: g.lines, Duplicates: uint64(g.dupsSent), PerCustomer: map[string]decimal.Decimal{}}
	if g.opt.Engine != nil {
		// In sending order, as the rater sees each customer's records
		// (one customer's records share a partition); each
		// customer-period's total does not depend on it.
		b := g.opt.Engine.RatePeriod(g.events)
		e.Lines = uint64(len(b.Lines))
		for _, l := range b.Lines {
			amt := l.Line.Decimal()
			e.PerCustomer[l.Key.Customer] = e.PerCustomer[l.Key.Customer].Add(amt)
			e.Total = e.Total.Add(amt)
		}
		return e
	}
	for i, amt := range g.perCust {
		if g.has[i] {
			e.PerCustomer[g.names[i]] = amt
			e.Total = e.Total.Add(amt)
		}
	}
	if g.probes > 0 {
		e.PerCustomer[g.probeCus] = g.probeTotal
		e.Total = e.Total.Add(g.probeTotal)
	}
	return e
}

// expect rates one unique event with the real price list and adds its
// rounded amount to its customer; with a catalogue it keeps the event for
// Expected, which rates them all with running state.
func (g *Generator) expect(ev event) error {
	ue := schemas.UsageEvent{
		Tenant:   g.opt.Tenant,
		ID:       string(g.appendID(nil, ev.index)),
		Customer: g.names[ev.customer],
		Element:  Elements[ev.element],
		Quantity: decimal.New(ev.mantissa, -ev.scale),
		Time:     time.Unix(ev.unix, 0).UTC(),
	}
	if g.opt.Engine != nil {
		if _, err := g.opt.Engine.Resolve(&ue, nil); err != nil {
			return fmt.Errorf("catalogue cannot rate event %s: %w", ue.ID, err)
		}
		g.events = append(g.events, ue)
		return nil
	}
	out := g.prices.Rate(&ue, g.ratedAt)
	if out.Line == nil {
		return fmt.Errorf("price list cannot rate event %s: %s", ue.ID, out.Unrated.Reason)
	}
	g.perCust[ev.customer] = g.perCust[ev.customer].Add(out.Line.Amount)
	g.has[ev.customer] = true
	g.lines++
	return nil
}

// event is one generated usage record before encoding.
type event struct {
	index    int
	customer int
	element  int
	mantissa int64 // quantity = mantissa × 10^-scale
	scale    int32
	unix     int64
}

// eventAt derives event i from the seed alone.
func (g *Generator) eventAt(i int) event {
	r := splitmix{s: g.seed ^ (uint64(i)+1)*0xd1b54a32d192ed03}
	ev := event{index: i}
	// Skew: customer = ⌊C·u³⌋ puts ~21% of the events on the first 1% of
	// the customers and leaves the tail light, like real tenants.
	u := r.float()
	ev.customer = min(int(float64(g.opt.Customers)*u*u*u), g.opt.Customers-1)
	switch k := r.next() % 100; {
	case k < 40: // api_calls: integer counts, mostly small
		v := r.float()
		ev.element, ev.mantissa = 0, 1+int64(v*v*5000)
	case k < 65: // storage_gb_hours: up to 3 decimal places
		ev.element, ev.mantissa, ev.scale = 1, 1+int64(r.next()%500_000), 3
	case k < 85: // transfer_gb: whole GB, or up to 6 decimal places
		ev.element = 2
		if r.next()%4 == 0 {
			ev.mantissa = 1 + int64(r.next()%50)
		} else {
			ev.mantissa, ev.scale = 1+int64(r.next()%10_000_000), 6
		}
	default: // sms: small integers
		ev.element, ev.mantissa = 3, 1+int64(r.next()%20)
	}
	ev.unix = g.fromUnix + int64(r.next()%g.span)
	return ev
}

func (g *Generator) appendID(buf []byte, i int) []byte {
	buf = append(buf, g.opt.RunID...)
	buf = append(buf, "-e"...)
	return strconv.AppendInt(buf, int64(i), 10)
}

// appendEvent writes ev as one NDJSON line. Every field is plain ASCII
// without characters JSON must escape, so no encoder is needed.
func (g *Generator) appendEvent(buf []byte, ev event) []byte {
	buf = append(buf, `{"id":"`...)
	buf = g.appendID(buf, ev.index)
	buf = append(buf, `","customer":"`...)
	buf = append(buf, g.names[ev.customer]...)
	buf = append(buf, `","element":"`...)
	buf = append(buf, Elements[ev.element]...)
	buf = append(buf, `","quantity":"`...)
	buf = appendQuantity(buf, ev.mantissa, ev.scale)
	buf = append(buf, `","time":"`...)
	buf = time.Unix(ev.unix, 0).UTC().AppendFormat(buf, time.RFC3339)
	return append(buf, "\"}\n"...)
}

// appendQuantity writes mantissa × 10^-scale in plain decimal notation
// without trailing fraction zeros (mantissa ≥ 0).
func appendQuantity(buf []byte, mantissa int64, scale int32) []byte {
	if scale <= 0 {
		return strconv.AppendInt(buf, mantissa, 10)
	}
	pow := int64(1)
	for range scale {
		pow *= 10
	}
	buf = strconv.AppendInt(buf, mantissa/pow, 10)
	frac := mantissa % pow
	if frac == 0 {
		return buf
	}
	for frac%10 == 0 {
		frac /= 10
		pow /= 10
	}
	buf = append(buf, '.')
	for p := pow / 10; p > frac && p > 1; p /= 10 { // leading zeros of the fraction
		buf = append(buf, '0')
	}
	return strconv.AppendInt(buf, frac, 10)
}

// splitmix is SplitMix64: tiny, fast and good enough to shape traffic.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// float returns a uniform value in [0, 1).
func (r *splitmix) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
