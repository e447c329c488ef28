package pricing

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func decp(s string) *decimal.Decimal { d := dec(s); return &d }

func date(s string) catalog.Date {
	d, err := catalog.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func datep(s string) *catalog.Date { d := date(s); return &d }

var since = catalog.Validity{ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}

// tiers builds tiers from (up_to, unit_price, flat_fee) triples; an empty
// up_to is the open last tier.
func tiers(t ...[3]string) []catalog.Tier {
	var out []catalog.Tier
	for _, x := range t {
		tr := catalog.Tier{UnitPrice: dec(x[1]), FlatFee: dec(x[2])}
		if x[0] != "" {
			tr.UpTo = decp(x[0])
		}
		out = append(out, tr)
	}
	return out
}

// oneFee is a catalogue with one customer "c", one basic contract "b"
// (currency, Asia/Tokyo, closing day 0, half_up), one service contract "k"
// from 2026-01-01 on plan "p" with one metered fee "f" on element "e" (sum)
// priced by rate table "rt". Options adjust it.
func oneFee(rt catalog.RateTableVersion, currency string, opts ...func(*catalog.Catalogue)) *catalog.Catalogue {
	rt.Validity = since
	c := &catalog.Catalogue{
		Tenant:   "t1",
		Services: []catalog.Service{{Code: "s", Name: "S", Versions: []catalog.ServiceVersion{{Validity: since, Kind: catalog.KindService}}}},
		Plans: []catalog.Plan{{Code: "p", Name: "P", Versions: []catalog.PlanVersion{{Validity: since, Type: catalog.PlanMetered,
			Currency: currency, Fees: []string{"f"}}}}},
		Fees: []catalog.Fee{{Code: "f", Name: "F", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered,
			Element: "e", Rates: []catalog.RateChoice{{RateTable: "rt"}}}}}},
		Elements:   []catalog.Element{{Code: "e", Name: "E", Versions: []catalog.ElementVersion{{Validity: since, Unit: "u", Aggregation: catalog.AggSum}}}},
		RateTables: []catalog.RateTable{{Code: "rt", Name: "RT", Versions: []catalog.RateTableVersion{rt}}},
		BasicContracts: []catalog.BasicContract{{ID: "b", Customer: "c", DateRange: catalog.DateRange{Start: date("2026-01-01")},
			Currency: currency, ClosingDay: 0, TimeZone: "Asia/Tokyo", Rounding: money.HalfUp}},
		ServiceContracts: []catalog.ServiceContract{{ID: "k", Customer: "c", Basic: "b", Service: "s",
			DateRange: catalog.DateRange{Start: date("2026-01-01")},
			Plans:     []catalog.PricePlanTerm{{Plan: "p", DateRange: catalog.DateRange{Start: date("2026-01-01")}}}}},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func withMode(m money.Mode) func(*catalog.Catalogue) {
	return func(c *catalog.Catalogue) { c.BasicContracts[0].Rounding = m }
}

func withLineRounding(c *catalog.Catalogue) { c.Plans[0].Versions[0].RoundingPoint = catalog.RoundLine }

func withElement(f func(v *catalog.ElementVersion)) func(*catalog.Catalogue) {
	return func(c *catalog.Catalogue) { f(&c.Elements[0].Versions[0]) }
}

func withFee(f func(v *catalog.FeeVersion)) func(*catalog.Catalogue) {
	return func(c *catalog.Catalogue) { f(&c.Fees[0].Versions[0]) }
}

func compile(t testing.TB, c *catalog.Catalogue) *Engine {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("catalogue invalid: %v", err)
	}
	e, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stream rates events one at a time through states kept as bytes (as the
// stage keeps them in Redis), all charges of an event or none.
type stream struct {
	e      *Engine
	states map[Key][]byte
	buf    []Charge
}

func newStream(e *Engine) *stream { return &stream{e: e, states: map[Key][]byte{}} }

type streamLine struct {
	Key  Key
	Cur  string
	Line Line
}

func (s *stream) rate(ev *schemas.UsageEvent) ([]streamLine, error) {
	charges, err := s.e.Resolve(ev, s.buf)
	s.buf = charges
	if err != nil {
		return nil, err
	}
	var out []streamLine
	saved := map[Key][]byte{}
	for i := range charges {
		c := &charges[i]
		var st State
		if b, ok := s.states[c.Key]; ok {
			if err := st.UnmarshalBinary(b); err != nil {
				return nil, err
			}
		}
		line, err := c.Apply(&st, ev)
		if err != nil {
			return nil, err
		}
		b, _ := st.MarshalBinary()
		saved[c.Key] = b
		out = append(out, streamLine{c.Key, c.Currency, line})
	}
	for k, b := range saved {
		s.states[k] = b
	}
	return out, nil
}

// event builds a usage event of customer c on element e.
func event(id string, at time.Time, qty string, attrs ...string) schemas.UsageEvent {
	ev := schemas.UsageEvent{Tenant: "t1", ID: id, Customer: "c", Element: "e", Quantity: dec(qty), Time: at.UTC()}
	if len(attrs) > 0 {
		ev.Attributes = map[string]string{}
		for i := 0; i+1 < len(attrs); i += 2 {
			ev.Attributes[attrs[i]] = attrs[i+1]
		}
	}
	return ev
}

var march = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// rateQuantities streams one event per quantity (a second apart) and
// returns the lines (minor units) and their sum.
func rateQuantities(t *testing.T, e *Engine, qtys ...string) ([]int64, int64) {
	t.Helper()
	s := newStream(e)
	var lines []int64
	var total int64
	for i, q := range qtys {
		ev := event(fmt.Sprintf("e%d", i), march.Add(time.Duration(i)*time.Second), q)
		ls, err := s.rate(&ev)
		if err != nil {
			t.Fatalf("event %d (%s): %v", i, q, err)
		}
		for _, l := range ls {
			lines = append(lines, l.Line.Amount)
			total += l.Line.Amount
		}
	}
	return lines, total
}

func reasonOf(err error) string {
	var u *Unrated
	if errors.As(err, &u) {
		return u.Code
	}
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

func minor(s string, places int32) int64 {
	m, ok := minorOf(dec(s), places)
	if !ok {
		panic(s)
	}
	return m
}
