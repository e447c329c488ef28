package pricing

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// killBillCapacity is Kill Bill's capacity example: a tier of at most 100
// bandwidth-meg-sec and 500 members at 5.00 EUR (the tiers after it are
// ours: up to 1000 members at 9.00, then 20.00 without limits).
// https://github.com/killbill/killbill-docs/blob/v3/userguide/subscription/includes/catalog-usage.adoc
// ("Capacity In Arrear Mode": "the peak data for each unit is used to
// define which tier to use, and based on the tier we simply apply the
// pricing defined").
func killBillCapacity(closed bool) *catalog.Catalogue {
	tiers := []catalog.CapacityTier{
		{Limits: map[string]decimal.Decimal{"bandwidth": dec("100"), "members": dec("500")}, Price: dec("5.00")},
		{Limits: map[string]decimal.Decimal{"bandwidth": dec("100"), "members": dec("1000")}, Price: dec("9.00")},
	}
	if !closed {
		tiers = append(tiers, catalog.CapacityTier{Price: dec("20.00")})
	}
	rt := catalog.RateTableVersion{Model: catalog.ModelCapacity, Capacity: &catalog.Capacity{Units: []string{"bandwidth", "members"}, Tiers: tiers}}
	return oneFee(rt, "EUR", since2018, from2018, func(c *catalog.Catalogue) {
		c.Elements = []catalog.Element{
			{Code: "bandwidth", Name: "B", Versions: []catalog.ElementVersion{{Validity: since, Unit: "meg-sec", Aggregation: catalog.AggSum}}},
			{Code: "members", Name: "M", Versions: []catalog.ElementVersion{{Validity: since, Unit: "member", Aggregation: catalog.AggSum}}},
		}
		c.Fees[0].Versions[0].Element = "bandwidth"
		since2018(c)
	})
}

// from2018 starts the catalogue's contracts in 2018 (the examples are in
// 2019).
func from2018(c *catalog.Catalogue) {
	for i := range c.BasicContracts {
		c.BasicContracts[i].Start = date("2018-01-01")
	}
	for i := range c.ServiceContracts {
		k := &c.ServiceContracts[i]
		k.Start = date("2018-01-01")
		for j := range k.Plans {
			k.Plans[j].Start = date("2018-01-01")
		}
	}
}

func capacityEvent(id, element, qty string, day int) schemas.UsageEvent {
	ev := event(id, time.Date(2019, 3, day, 3, 0, 0, 0, time.UTC), qty)
	ev.Element = element
	return ev
}

func TestCapacityTiers(t *testing.T) {
	type rec struct{ element, qty string }
	cases := []struct {
		name   string
		closed bool
		recs   []rec
		lines  []int64 // euro cents per record; -1: unrated
		total  int64
	}{
		// Kill Bill: peaks of 50 (bandwidth) and 350 (members) are charged
		// 5.00 EUR, whatever the records below the peaks.
		{name: "Kill Bill: peaks 50 and 350", recs: []rec{{"bandwidth", "50"}, {"members", "350"}, {"members", "120"}, {"bandwidth", "30"}},
			lines: []int64{500, 0, 0, 0}, total: 500},
		// "if the members peak data was 501, this would move to the next
		// tier": the record raising the peak charges the difference.
		{name: "Kill Bill: members peak 501 moves to the next tier", recs: []rec{{"bandwidth", "50"}, {"members", "350"}, {"members", "501"}},
			lines: []int64{500, 0, 400}, total: 900},
		// Peaks are not sums: two records of 300 members stay in tier 1.
		{name: "peaks, not sums", recs: []rec{{"members", "300"}, {"members", "300"}}, lines: []int64{500, 0}, total: 500},
		// Every limit must fit: bandwidth 101 passes tiers 1 and 2.
		{name: "one unit past its limit moves the tier", recs: []rec{{"members", "10"}, {"bandwidth", "101"}}, lines: []int64{500, 1500}, total: 2000},
		{name: "on the limit stays (inclusive)", recs: []rec{{"bandwidth", "100"}, {"members", "500"}}, lines: []int64{500, 0}, total: 500},
		// A closed last tier: peaks fitting no tier are unrated, the state
		// unchanged (the next record is priced as if it had not come).
		{name: "beyond the last tier is unrated", closed: true, recs: []rec{{"members", "900"}, {"members", "1001"}, {"bandwidth", "1"}},
			lines: []int64{900, -1, 0}, total: 900},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := compile(t, killBillCapacity(tc.closed))
			var evs []schemas.UsageEvent
			for i, r := range tc.recs {
				evs = append(evs, capacityEvent(string(rune('a'+i)), r.element, r.qty, 2+i))
			}
			s := newStream(e)
			var total int64
			for i := range evs {
				ls, err := s.rate(&evs[i])
				if tc.lines[i] < 0 {
					if reasonOf(err) != schemas.ReasonAboveLastTier {
						t.Fatalf("record %d: %v, want above_last_tier", i, err)
					}
					continue
				}
				if err != nil || len(ls) != 1 {
					t.Fatalf("record %d: %v %v", i, ls, err)
				}
				if ls[0].Line.Amount != tc.lines[i] {
					t.Errorf("record %d: line %d, want %d", i, ls[0].Line.Amount, tc.lines[i])
				}
				total += ls[0].Line.Amount
			}
			if total != tc.total {
				t.Errorf("total %d, want %d", total, tc.total)
			}
			// The batch gives the same lines.
			b := e.RatePeriod(evs)
			var bt int64
			for _, l := range b.Lines {
				bt += l.Line.Amount
			}
			if bt != tc.total {
				t.Errorf("batch total %d, want %d", bt, tc.total)
			}
		})
	}
}

// Correcting a capacity charge: a record below its unit's peak comes out
// with a zero line; the one at the peak needs the period re-rated.
func TestCapacityRemove(t *testing.T) {
	e := compile(t, killBillCapacity(false))
	evs := []schemas.UsageEvent{capacityEvent("a", "members", "600", 2), capacityEvent("b", "members", "200", 3), capacityEvent("c", "bandwidth", "10", 4)}
	var st State
	for i := range evs {
		cs, err := e.Resolve(&evs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs[0].Apply(&st, &evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	cs, _ := e.Resolve(&evs[1], nil)
	line, err := cs[0].Remove(&st, &evs[1])
	if err != nil || line.Amount != 0 {
		t.Fatalf("remove below the peak: %+v %v", line, err)
	}
	if _, err := cs[0].Remove(&st, &evs[0]); !errors.Is(err, ErrNeedsRecompute) {
		t.Fatalf("remove the peak: %v, want ErrNeedsRecompute", err)
	}
	// Re-rating without it: 10 bandwidth alone is tier 1.
	b := e.RatePeriod([]schemas.UsageEvent{evs[2]})
	if got := b.Totals()[cs[0].Key]; got != 500 {
		t.Fatalf("re-rated total %d, want 500", got)
	}
	// The peaks survive the state's encoding.
	raw, _ := st.MarshalBinary()
	var back State
	if err := back.UnmarshalBinary(raw); err != nil || back.peaks != st.peaks || back.records != st.records {
		t.Fatalf("round trip: %+v %v, want %+v", back, err, st)
	}
}

func TestCapacityValidation(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *catalog.Catalogue)
		want string
	}{
		{"limit of a unit the table lacks", func(c *catalog.Catalogue) {
			c.RateTables[0].Versions[0].Capacity.Tiers[0].Limits["disk"] = dec("1")
		}, "rate_tables[0].versions[0].capacity.tiers[0].limits.disk: is not one of the table's units"},
		{"unknown element as unit", func(c *catalog.Catalogue) {
			c.RateTables[0].Versions[0].Capacity.Units = append(c.RateTables[0].Versions[0].Capacity.Units, "disk")
		}, `rate_tables[0].versions[0].capacity.units[2]: unknown element "disk"`},
		{"too many units", func(c *catalog.Catalogue) {
			c.RateTables[0].Versions[0].Capacity.Units = []string{"bandwidth", "members", "a", "b", "c"}
		}, "rate_tables[0].versions[0].capacity.units: must name 1 to 4 elements"},
		{"fee element not a unit", func(c *catalog.Catalogue) {
			c.Elements = append(c.Elements, catalog.Element{Code: "other", Name: "O", Versions: []catalog.ElementVersion{{Validity: since, Unit: "u", Aggregation: catalog.AggSum}}})
			c.Fees[0].Versions[0].Element = "other"
		}, `fees[0].versions[0].rates[0].rate_table: rate table "rt" is a capacity table whose units do not include the fee's element "other"`},
		{"no tiers", func(c *catalog.Catalogue) { c.RateTables[0].Versions[0].Capacity.Tiers = nil },
			"rate_tables[0].versions[0].capacity.tiers: at least one tier is required"},
		{"missing capacity", func(c *catalog.Catalogue) { c.RateTables[0].Versions[0].Capacity = nil },
			"rate_tables[0].versions[0].capacity: capacity needs units and tiers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := killBillCapacity(false)
			tc.edit(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
