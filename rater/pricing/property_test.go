package pricing

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
	"github.com/zeebo/xxh3"
)

// The property the monthly close relies on: for many random catalogues
// (every model, quantity rule, dimension, discount, rounding mode, currency
// and rounding point) and random event sequences,
//
//  1. the lines streamed one event at a time on the fast path, with every
//     running state stored as bytes and read back between events, equal —
//     line by line and per customer-period to the last minor unit — a
//     from-scratch RatePeriod on the decimal-only reference engine;
//  2. for order-independent setups (no version change inside a period, period
//     rounding, no percentage free allowance, discounts covering the whole
//     range), each charge's lines sum to the rounded price of the period's
//     records aggregated directly from the events (not incrementally), and
//     the customer-period totals are equal for any permutation of the events;
//  3. the lines of a period as a whole (idle fee minimums, commitment
//     true-ups, time-weighted amounts) that the stream's emitter computes
//     from the period's records equal the receivable batch's
//     (checkPeriodLines; over the 400 seeds about 2,900 true-ups, 700 idle
//     minimums and 1,000 time-weighted amounts are compared).
func TestStreamEqualsBatch(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 60
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x6b616b696e))
		// The models issue 19 added draw from their own stream, so the
		// catalogues of the earlier models stay what they were per seed.
		g := &gen{rng: rng, oi: seed%2 == 0, x: rand.New(rand.NewPCG(seed, 0x6973737565313900))}
		cat := g.catalogue()
		// Period lines (idle minimums, commitments) draw from a stream of
		// their own, so the catalogues above stay what they were per seed.
		periodRules(cat, rand.New(rand.NewPCG(seed, 0x706572696f64)))
		if err := cat.Validate(); err != nil {
			t.Fatalf("seed %d: generated catalogue invalid: %v", seed, err)
		}
		fast, err := Compile(cat)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		ref, _ := Compile(cat)
		ref.noFast = true
		events := g.events(20 + rng.IntN(60))
		checkStreamEqualsBatch(t, seed, g, fast, ref, events)
	}
}

func checkStreamEqualsBatch(t *testing.T, seed uint64, g *gen, fast, ref *Engine, events []schemas.UsageEvent) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (order-independent %v): %s", seed, g.oi, fmt.Sprintf(format, args...))
	}
	// 1. Stream (fast path, states as bytes) against the reference batch.
	s := newStream(fast)
	batch := ref.RatePeriod(events)
	var streamed []streamLine
	var unrated []int
	charges := map[Key]Charge{}
	byKey := map[Key][]int{}
	for i := range events {
		ls, err := s.rate(&events[i])
		if err != nil {
			if _, ok := err.(*Unrated); !ok {
				fail("event %d: %v", i, err)
			}
			unrated = append(unrated, i)
			continue
		}
		streamed = append(streamed, ls...)
		cs, _ := fast.Resolve(&events[i], nil)
		for _, c := range cs {
			charges[c.Key] = c
			byKey[c.Key] = append(byKey[c.Key], i)
		}
	}
	if len(streamed) != len(batch.Lines) || len(unrated) != len(batch.Unrated) {
		fail("stream: %d lines, %d unrated; batch: %d lines, %d unrated", len(streamed), len(unrated), len(batch.Lines), len(batch.Unrated))
	}
	for i, l := range streamed {
		b := batch.Lines[i]
		if l.Key != b.Key || l.Line != b.Line {
			fail("line %d: stream %v %+v, batch %v %+v", i, l.Key, l.Line, b.Key, b.Line)
		}
	}
	streamTotals := map[CustomerPeriod]int64{}
	for _, l := range streamed {
		streamTotals[CustomerPeriod{l.Key.Customer, l.Key.Period, l.Cur}] += l.Line.Amount
	}
	batchTotals := batch.CustomerTotals()
	if fmt.Sprint(sortedTotals(streamTotals)) != fmt.Sprint(sortedTotals(batchTotals)) {
		fail("customer-period totals: stream %v, batch %v", sortedTotals(streamTotals), sortedTotals(batchTotals))
	}
	// Time-weighted charges are priced at the period's end from the
	// period's records: the fast engine and the reference agree.
	if pe := fast.RatePeriod(events).PeriodEnd; fmt.Sprint(periodEndOf(pe)) != fmt.Sprint(periodEndOf(batch.PeriodEnd)) {
		fail("period end: fast %v, reference %v", periodEndOf(pe), periodEndOf(batch.PeriodEnd))
	}
	checkPeriodLines(fail, g.contracts, fast, ref, batch, events)
	if !g.oi {
		return
	}

	// 2a. Each charge's lines sum to the price of its records aggregated
	// directly.
	keyTotals := batch.Totals()
	for k, idx := range byKey {
		c := charges[k]
		want := oracleTotal(t, &c, events, idx)
		if keyTotals[k] != want {
			fail("charge %v: lines sum to %d, the directly aggregated records cost %d", k, keyTotals[k], want)
		}
	}
	// 2b. Any order gives the same totals.
	for p := 0; p < 3; p++ {
		perm := append([]schemas.UsageEvent(nil), events...)
		g.rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		pb := fast.RatePeriod(perm)
		got := pb.CustomerTotals()
		if fmt.Sprint(sortedTotals(got)) != fmt.Sprint(sortedTotals(batchTotals)) {
			fail("permutation %d: totals %v, in order %v", p, sortedTotals(got), sortedTotals(batchTotals))
		}
		// Level changes at distinct instants give the same level-time in
		// any order.
		if distinctTimes(events) && fmt.Sprint(periodEndOf(pb.PeriodEnd)) != fmt.Sprint(periodEndOf(batch.PeriodEnd)) {
			fail("permutation %d: period end %v, in order %v", p, periodEndOf(pb.PeriodEnd), periodEndOf(batch.PeriodEnd))
		}
	}
}

// periodRules gives some plan versions a commitment and fee minimums due
// without usage (issue 19 items 6 and 11), drawn from r.
func periodRules(c *catalog.Catalogue, r *rand.Rand) {
	for i := range c.Plans {
		v := &c.Plans[i].Versions[0]
		if r.IntN(3) == 0 {
			m := decimal.New(int64(r.IntN(500000)), -int32(r.IntN(3)))
			v.Commitment = &m
		}
		v.MinimumWithoutUsage = r.IntN(3) == 0
	}
}

// checkPeriodLines: the lines of a period as a whole — idle fee minimums,
// commitment true-ups and time-weighted amounts — as the stream's fixed-fee
// emitter computes them once the period ended (the fast engine over the
// customer's records of the period's window only, PeriodLines with all and
// Batch.PeriodEndOf) equal what the receivable batch computes (the
// decimal reference engine over every record, PeriodLines without all):
// the emitter's lines not due are exactly the batch's missing ones, at zero
// (lines of zero are left out on both sides: a fee minimum of 0 is due at
// 0).
// Every service contract's period of every event's time is checked, so
// periods in which a contract had no record (idle minimums) are too.
func checkPeriodLines(fail func(string, ...any), contracts []catalog.ServiceContract, fast, ref *Engine, batch *Batch, events []schemas.UsageEvent) {
	type cp struct {
		contract string
		id       PeriodID
	}
	seen := map[cp]bool{}
	for ci := range contracts {
		k := &contracts[ci]
		for i := range events {
			p, err := fast.PeriodAt(k.ID, events[i].Time)
			if err != nil || seen[cp{k.ID, p.ID}] {
				continue
			}
			seen[cp{k.ID, p.ID}] = true
			var window []schemas.UsageEvent
			for _, ev := range events {
				if ev.Customer == k.Customer && !ev.Time.Before(p.StartTime()) && ev.Time.Before(p.EndTime()) {
					window = append(window, ev)
				}
			}
			wb := fast.RatePeriod(window)
			emitted, err := fast.PeriodLines(k.ID, p.ID, wb, true)
			if err != nil {
				fail("%s %s: emitter's period lines: %v", k.ID, p.ID, err)
			}
			billed, err := ref.PeriodLines(k.ID, p.ID, batch, false)
			if err != nil {
				fail("%s %s: batch's period lines: %v", k.ID, p.ID, err)
			}
			var got, want []string
			for _, l := range emitted {
				if !l.Amount.IsZero() || !l.Discount.IsZero() {
					got = append(got, fmt.Sprintf("%s=%s/%s", l.Item(), l.Amount, l.Discount))
				}
			}
			for _, l := range billed {
				if !l.Amount.IsZero() || !l.Discount.IsZero() { // a minimum of 0 is due at 0
					want = append(want, fmt.Sprintf("%s=%s/%s", l.Item(), l.Amount, l.Discount))
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				fail("%s %s: the emitter's period lines %v, the batch's %v", k.ID, p.ID, got, want)
			}
			if pe, be := periodEndOf(wb.PeriodEndOf(k.ID, p.ID)), periodEndOf(batch.PeriodEndOf(k.ID, p.ID)); fmt.Sprint(pe) != fmt.Sprint(be) {
				fail("%s %s: the emitter's time-weighted amounts %v, the batch's %v", k.ID, p.ID, pe, be)
			}
		}
	}
}

// oracleTotal aggregates a charge's records directly (no running state) and
// prices the result with the decimal path.
func oracleTotal(t *testing.T, c *Charge, events []schemas.UsageEvent, idx []int) int64 {
	t.Helper()
	if c.agg == aggTimeWeighted {
		return 0 // priced at the period's end (checked as PeriodEnd)
	}
	var qty, charged decimal.Decimal
	var latestAt int64
	var latestH uint64
	users := map[string]bool{}
	pct := c.rate.model == catalog.ModelPercentage
	var peaks [catalog.MaxCapacityUnits]u128
	for n, i := range idx {
		ev := &events[i]
		q := ev.Quantity
		if r := c.el.round; r != nil && r.record {
			q = roundQuantityDec(q, r.inc, r.mode)
		}
		if c.rate.capacity != nil {
			u := c.rate.capacity.unit(ev.Element)
			if p, _ := u128Of(q, qtyScale); p.cmp(peaks[u]) > 0 {
				peaks[u] = p
			}
			continue
		}
		if pct {
			qty = qty.Add(q)
			charged = charged.Add(c.rate.pct.charge(uint64(n+1), u128{}, q))
			continue
		}
		switch c.el.agg {
		case catalog.AggSum:
			qty = qty.Add(q)
		case catalog.AggMax:
			if n == 0 || q.GreaterThan(qty) {
				qty = q
			}
		case catalog.AggCount:
			qty = decimal.NewFromInt(int64(n + 1))
		case catalog.AggUniqueCount:
			users[ev.Attributes[c.el.uniqueAttr]] = true
			qty = decimal.NewFromInt(int64(len(users)))
		case catalog.AggLatest:
			at, h := ev.Time.UnixNano(), xxh3.HashString(ev.ID)
			if n == 0 || at > latestAt || (at == latestAt && h >= latestH) {
				qty, latestAt, latestH = q, at, h
			}
		}
	}
	tq, ok1 := u128Of(qty, qtyScale)
	tc, ok2 := u128Of(charged, amountScale)
	if !ok1 || !ok2 {
		t.Fatalf("oracle quantities out of range: %s %s", qty, charged)
	}
	tl := tally{records: uint64(len(idx)), qty: tq, charged: tc, peaks: &peaks}
	net := c.netDec(tl, c.grossDec(tl))
	m, ok := minorOf(money.Round(net, c.places, c.mode), c.places)
	if !ok {
		t.Fatal("oracle total overflows")
	}
	return m
}

// periodEndOf renders period-end lines sorted by key.
func periodEndOf(ls []PeriodEndLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%v=%d/%d %s %v", l.Key, l.Line.Amount, l.Line.Discount, l.Quantity, l.Reason))
	}
	sort.Strings(out)
	return out
}

func distinctTimes(evs []schemas.UsageEvent) bool {
	seen := map[int64]bool{}
	for _, ev := range evs {
		if seen[ev.Time.UnixNano()] {
			return false
		}
		seen[ev.Time.UnixNano()] = true
	}
	return true
}

func sortedTotals(m map[CustomerPeriod]int64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s/%s/%s=%d", k.Customer, k.Period, k.Currency, v))
	}
	sort.Strings(out)
	return out
}

// gen generates random catalogues and events. oi restricts the catalogue to
// order-independent setups.
type gen struct {
	rng       *rand.Rand
	oi        bool
	elements  []catalog.Element
	contracts []catalog.ServiceContract // of the last catalogue
	x         *rand.Rand                // draws for the issue-19 rules (rng when nil)
}

// xpick draws for the rules added by issue 19.
func (g *gen) xpick(n int) int {
	if g.x == nil {
		return g.rng.IntN(n)
	}
	return g.x.IntN(n)
}

var (
	genStart = time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
	genEnd   = time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	genMid   = time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC) // a version boundary inside a period
)

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

// decimal with up to maxInt integer part and up to places decimals, biased
// towards integers (tier boundaries are hit).
func (g *gen) dec(maxInt int64, places int) decimal.Decimal {
	if g.pick(3) == 0 || places == 0 {
		return decimal.NewFromInt(g.rng.Int64N(maxInt + 1))
	}
	p := 1 + g.pick(places)
	scale := int64(1)
	for i := 0; i < p; i++ {
		scale *= 10
	}
	return decimal.New(g.rng.Int64N(maxInt*scale+1), -int32(p))
}

func (g *gen) rateVersion() catalog.RateTableVersion {
	models := []catalog.Model{catalog.ModelPerUnit, catalog.ModelGraduated, catalog.ModelVolume, catalog.ModelPackage, catalog.ModelOverage, catalog.ModelPercentage}
	v := catalog.RateTableVersion{Model: models[g.pick(len(models))]}
	switch v.Model {
	case catalog.ModelPerUnit:
		p := g.dec(20, 6)
		v.UnitPrice = &p
	case catalog.ModelGraduated, catalog.ModelVolume:
		n := 1 + g.pick(4)
		bound := decimal.Zero
		for i := 0; i < n; i++ {
			t := catalog.Tier{UnitPrice: g.dec(10, 4)}
			if g.pick(3) == 0 {
				t.FlatFee = g.dec(50, 2)
			}
			if g.xpick(4) == 0 { // tier-level minimum and maximum (item 7)
				lo := decimal.New(int64(g.xpick(3000)), -2)
				t.Minimum = &lo
			}
			if g.xpick(4) == 0 {
				hi := decimal.New(int64(3000+g.xpick(20000)), -2)
				t.Maximum = &hi
			}
			if i < n-1 {
				bound = bound.Add(decimal.NewFromInt(1 + g.rng.Int64N(15)))
				b := bound
				t.UpTo = &b
			}
			v.Tiers = append(v.Tiers, t)
		}
		if g.xpick(3) == 0 {
			v.TierBounds = catalog.BoundsFrom
		}
		// A closed last tier: priced beyond by an overage rule, or (only
		// where the order of records may matter) unrated beyond.
		if close := g.xpick(3); close == 0 || close == 1 && !g.oi {
			last := &v.Tiers[len(v.Tiers)-1]
			b := bound.Add(decimal.NewFromInt(1 + int64(g.xpick(30))))
			last.UpTo = &b
			if close == 0 {
				v.AboveLastTier = &catalog.AboveLastTier{UnitPrice: decimal.New(int64(g.xpick(100000)), -4)}
			}
		}
	case catalog.ModelPackage:
		r := "up"
		if g.pick(2) == 0 {
			r = "down"
		}
		v.Package = &catalog.Package{Size: decimal.NewFromInt(1 + g.rng.Int64N(10)), Price: g.dec(30, 3), Rounding: r, FreeUnits: decimal.NewFromInt(g.rng.Int64N(5))}
	case catalog.ModelOverage:
		v.Overage = &catalog.Overage{Included: decimal.NewFromInt(g.rng.Int64N(20)), UnitPrice: g.dec(10, 4)}
	case catalog.ModelPercentage:
		p := &catalog.Percentage{Rate: g.dec(0, 4), FixedFee: g.dec(2, 2)}
		if !g.oi {
			if g.pick(2) == 0 {
				p.FreeTransactions = g.rng.Int64N(4)
			}
			if g.pick(2) == 0 {
				p.FreeAmount = g.dec(30, 1)
			}
		}
		if g.pick(2) == 0 {
			m := g.dec(1, 2)
			p.MinPerTransaction = &m
		}
		if g.pick(2) == 0 {
			m := decimal.NewFromInt(1 + g.rng.Int64N(5))
			if p.MinPerTransaction == nil || !p.MinPerTransaction.GreaterThan(m) {
				p.MaxPerTransaction = &m
			}
		}
		v.Percentage = p
	}
	return v
}

// capacity is a capacity table over the fee's element and some others
// (issue 19 item 3), drawn from the issue-19 stream. Its last tier is
// unbounded in order-independent setups (a record beyond a closed last tier
// is unrated, which depends on the order).
func (g *gen) capacity(feeElement string) catalog.RateTableVersion {
	units := []string{feeElement}
	for _, el := range g.elements {
		if el.Code != feeElement && g.xpick(2) == 0 {
			units = append(units, el.Code)
		}
	}
	c := &catalog.Capacity{Units: units}
	limit := map[string]int64{}
	n := 1 + g.xpick(3)
	for i := 0; i < n; i++ {
		t := catalog.CapacityTier{Price: decimal.New(int64(g.xpick(5000)), -int32(g.xpick(3))), Limits: map[string]decimal.Decimal{}}
		for _, u := range units {
			if g.xpick(4) > 0 {
				limit[u] += 1 + int64(g.xpick(12))
				t.Limits[u] = decimal.NewFromInt(limit[u])
			}
		}
		c.Tiers = append(c.Tiers, t)
	}
	if last := &c.Tiers[n-1]; g.oi || g.xpick(2) == 0 {
		last.Limits = nil
	}
	return catalog.RateTableVersion{Model: catalog.ModelCapacity, Capacity: c}
}

func (g *gen) catalogue() *catalog.Catalogue {
	c := &catalog.Catalogue{Tenant: "t1"}
	c.Services = []catalog.Service{{Code: "s", Name: "S", Versions: []catalog.ServiceVersion{{Validity: since, Kind: catalog.KindService}}}}
	aggs := []catalog.Aggregation{catalog.AggSum, catalog.AggMax, catalog.AggCount, catalog.AggUniqueCount, catalog.AggLatest}
	nEl := 1 + g.pick(3)
	for i := 0; i < nEl; i++ {
		v := catalog.ElementVersion{Validity: since, Unit: "u", Aggregation: aggs[g.pick(len(aggs))]}
		if v.Aggregation == catalog.AggUniqueCount {
			v.UniqueAttribute = "user"
		}
		if g.xpick(6) == 0 { // time_weighted (item 4), drawn after the earlier draws
			v.Aggregation, v.UniqueAttribute, v.TimeUnit = catalog.AggTimeWeighted, "", []string{"day", "period"}[g.xpick(2)]
		}
		if g.pick(3) == 0 {
			incs := []string{"1", "60", "0.5", "0.001", "3"}
			modes := []string{"half_up", "down", "up"}
			scope := "record"
			if g.pick(2) == 0 {
				scope = "period"
			}
			v.Rounding = &catalog.QuantityRounding{Increment: dec(incs[g.pick(len(incs))]), Mode: modes[g.pick(3)], Scope: scope}
		}
		c.Elements = append(c.Elements, catalog.Element{Code: fmt.Sprintf("e%d", i), Name: "E", Versions: []catalog.ElementVersion{v}})
	}
	g.elements = c.Elements
	nFees := 1 + g.pick(3)
	skipUnmatched := g.xpick(2) == 0 // fees restricted by attribute (item 10)
	var feeCodes []string
	for i := 0; i < nFees; i++ {
		code := fmt.Sprintf("f%d", i)
		feeCodes = append(feeCodes, code)
		fv := catalog.FeeVersion{Validity: since, Kind: catalog.FeeMetered, Element: fmt.Sprintf("e%d", g.pick(nEl))}
		for j, match := range []map[string]string{nil, {"region": "r1"}} {
			if j == 1 && g.pick(2) == 0 {
				break
			}
			rt := catalog.RateTable{Code: fmt.Sprintf("rt-%s-%d", code, j), Name: "RT"}
			first := g.rateVersion()
			if g.xpick(6) == 0 { // capacity tiers (item 3)
				first = g.capacity(fv.Element)
			}
			if !g.oi && g.pick(3) == 0 {
				second := g.rateVersion()
				if g.xpick(6) == 0 {
					second = g.capacity(fv.Element)
				}
				mid := genMid
				first.Validity = catalog.Validity{ValidFrom: since.ValidFrom, ValidTo: &mid}
				second.Validity = catalog.Validity{ValidFrom: genMid}
				rt.Versions = []catalog.RateTableVersion{first, second}
			} else {
				first.Validity = since
				rt.Versions = []catalog.RateTableVersion{first}
			}
			c.RateTables = append(c.RateTables, rt)
			if j == 0 && g.xpick(3) == 0 {
				match = map[string]string{"region": "r2"} // no default entry: the fee is restricted
			}
			rc := catalog.RateChoice{Match: match, RateTable: rt.Code}
			if g.xpick(4) == 0 { // rates-entry minimum and maximum (item 7)
				lo := decimal.New(int64(g.xpick(4000)), -2)
				rc.Minimum = &lo
			}
			if g.xpick(4) == 0 {
				hi := decimal.New(int64(4000+g.xpick(30000)), -2)
				rc.Maximum = &hi
			}
			fv.Rates = append(fv.Rates, rc)
		}
		if g.pick(3) == 0 {
			fv.SplitBy = []string{"region"}
		}
		if g.pick(4) == 0 {
			m := g.dec(30, 2)
			fv.Minimum = &m
		}
		if g.pick(4) == 0 {
			m := decimal.NewFromInt(30 + g.rng.Int64N(300))
			fv.Maximum = &m
		}
		c.Fees = append(c.Fees, catalog.Fee{Code: code, Name: "F", Versions: []catalog.FeeVersion{fv}})
	}
	roundLine := !g.oi && g.pick(2) == 0
	groups := []catalog.RatingGroup{"", catalog.GroupBillingPeriod, catalog.GroupUsageStartDate, catalog.GroupUsageRecord, catalog.GroupUpload}
	group := groups[g.xpick(len(groups))] // rating groups (item 9)
	var precision *int32                  // rounding point receivable (item 5)
	if !roundLine && g.xpick(4) == 0 {
		p := int32(3 + g.xpick(7))
		precision = &p
	}
	for _, cur := range []string{"JPY", "USD", "BHD"} {
		pv := catalog.PlanVersion{Validity: since, Type: catalog.PlanMetered, Currency: cur, Fees: feeCodes}
		if roundLine {
			pv.RoundingPoint = catalog.RoundLine
		}
		if precision != nil {
			pv.RoundingPoint, pv.Precision = catalog.RoundReceivable, precision
		}
		if skipUnmatched {
			pv.UnmatchedRates = catalog.UnmatchedSkip
		}
		pv.RatingGroup = group
		c.Plans = append(c.Plans, catalog.Plan{Code: "p-" + cur, Name: "P", Versions: []catalog.PlanVersion{pv}})
	}
	tzs := []string{"Asia/Tokyo", "UTC", "America/New_York"}
	modes := []money.Mode{money.HalfUp, money.Down, money.Up}
	for i := 0; i < 3; i++ {
		cust := fmt.Sprintf("c%d", i)
		cur := []string{"JPY", "USD", "BHD"}[g.pick(3)]
		closing := 0
		if g.pick(2) == 0 {
			closing = 1 + g.pick(28)
		}
		c.BasicContracts = append(c.BasicContracts, catalog.BasicContract{ID: "b" + cust, Customer: cust,
			DateRange: catalog.DateRange{Start: date("2026-01-01")}, Currency: cur, ClosingDay: closing,
			TimeZone: tzs[g.pick(3)], Rounding: modes[g.pick(3)]})
		switch g.xpick(6) { // weekly and daily billing periods (item 1)
		case 0:
			b := &c.BasicContracts[len(c.BasicContracts)-1]
			b.BillingPeriod, b.WeekStart = catalog.PeriodWeekly, []string{"", "sunday", "wednesday", "saturday"}[g.xpick(4)]
		case 1:
			c.BasicContracts[len(c.BasicContracts)-1].BillingPeriod = catalog.PeriodDaily
		}
		k := catalog.ServiceContract{ID: "k" + cust, Customer: cust, Basic: "b" + cust, Service: "s",
			DateRange: catalog.DateRange{Start: date("2026-01-01")},
			Plans:     []catalog.PricePlanTerm{{Plan: "p-" + cur, DateRange: catalog.DateRange{Start: date("2026-01-01")}}}}
		if !g.oi && g.pick(4) == 0 {
			k.End = datep("2026-03-20")
			k.Plans[0].End = datep("2026-03-20")
		}
		c.ServiceContracts = append(c.ServiceContracts, k)
		for j := g.pick(3); j > 0; j-- {
			g.discount(c, cust, j, feeCodes)
		}
	}
	g.contracts = c.ServiceContracts
	return c
}

func (g *gen) discount(c *catalog.Catalogue, cust string, j int, fees []string) {
	if len(c.Services) == 1 {
		c.Services = append(c.Services, catalog.Service{Code: "disc", Name: "D", Versions: []catalog.ServiceVersion{{Validity: since, Kind: catalog.KindService}}})
	}
	code := fmt.Sprintf("dt-%s-%d", cust, j)
	v := catalog.DiscountTableVersion{Validity: since, Kind: catalog.DiscountPercentage, Basis: catalog.BasisAmount, Credit: g.pick(4) == 0}
	if g.pick(2) == 0 {
		v.Kind = catalog.DiscountFixed
	}
	if g.pick(2) == 0 {
		v.Basis = catalog.BasisQuantity
	}
	from := decimal.Zero
	for n := 1 + g.pick(3); n > 0; n-- {
		value := g.dec(100, 1)
		if v.Kind == catalog.DiscountFixed {
			value = g.dec(40, 2)
		}
		v.Tiers = append(v.Tiers, catalog.DiscountTier{From: from, Value: value})
		from = from.Add(decimal.NewFromInt(1 + g.rng.Int64N(30)))
	}
	c.DiscountTables = append(c.DiscountTables, catalog.DiscountTable{Code: code, Name: "DT", Versions: []catalog.DiscountTableVersion{v}})
	service := "s" // the customers' contracts' service
	if g.pick(5) == 0 {
		service = "disc" // a service the customer has no contract for: discounts nothing
	}
	dc := catalog.DiscountContract{ID: fmt.Sprintf("d-%s-%d", cust, j), Customer: cust, Service: service, DiscountTable: code,
		DateRange: catalog.DateRange{Start: date("2026-01-01")}, Order: g.pick(3)}
	if !g.oi && g.pick(3) == 0 {
		dc.Start = date("2026-03-10")
	}
	switch g.pick(4) {
	case 1:
		dc.Scope = catalog.DiscountScope{Level: "fee", Target: fees[g.pick(len(fees))]}
	case 2:
		dc.Scope = catalog.DiscountScope{Level: "contract", Target: "k" + cust}
	case 3:
		dc.Scope = catalog.DiscountScope{Level: "plan", Target: c.ServiceContracts[len(c.ServiceContracts)-1].Plans[0].Plan}
	}
	c.DiscountContracts = append(c.DiscountContracts, dc)
}

func (g *gen) events(n int) []schemas.UsageEvent {
	span := genEnd.Sub(genStart)
	out := make([]schemas.UsageEvent, n)
	for i := range out {
		at := genStart.Add(time.Duration(g.rng.Int64N(int64(span))))
		if g.pick(10) == 0 && i > 0 {
			at = out[g.pick(i)].Time // same instant as another record
		}
		q := g.dec(12, 9)
		if g.pick(8) == 0 {
			q = decimal.NewFromInt(g.rng.Int64N(2000))
		}
		ev := schemas.UsageEvent{Tenant: "t1", ID: fmt.Sprintf("ev-%d", i), Customer: fmt.Sprintf("c%d", g.pick(3)),
			Element: fmt.Sprintf("e%d", g.pick(len(g.elements))), Quantity: q, Time: at, Attributes: map[string]string{}}
		if g.pick(3) > 0 {
			ev.Attributes["region"] = []string{"r1", "r2"}[g.pick(2)]
		}
		if g.pick(12) > 0 {
			ev.Attributes["user"] = fmt.Sprintf("u%d", g.pick(5))
		}
		if g.x != nil && g.xpick(3) > 0 { // imported records (rating group upload)
			ev.Import = &schemas.ImportSource{File: "usage.csv", Job: fmt.Sprintf("job-%d", g.xpick(3))}
		}
		out[i] = ev
	}
	return out
}
