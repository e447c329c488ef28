package pricing

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// The models against their definitions, computed the slow obvious way: unit
// by unit for integer quantities. Graduated: unit u (1-based) is priced by
// the tier with from < u <= up_to, and a tier's flat fee is due once a unit
// falls in it. Volume: every unit at the price of the tier holding the last
// unit. Package: count blocks by subtraction. Overage: count the units past
// the included ones. Both the decimal and the fast path must agree.
func TestModelsAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	g := &gen{rng: rng, oi: true}
	for i := 0; i < 3000; i++ {
		v := g.rateVersion()
		if v.Model == catalog.ModelPercentage || v.Model == catalog.ModelPerUnit {
			continue
		}
		v.Validity = since
		rt := compileRateTable(&catalog.RateTable{Code: "x", Versions: []catalog.RateTableVersion{v}}).versions[0]
		for q := int64(0); q <= 70; q++ {
			want, priced := bruteForce(&v, q)
			if !priced {
				continue // beyond a closed last tier: unrated before pricing
			}
			qd := decimal.NewFromInt(q)
			if got := rt.costDec(qd); !got.Equal(want) {
				t.Fatalf("%s %+v: decimal cost(%d) = %s, by definition %s", v.Model, v, q, got, want)
			}
			if rt.fast {
				got, ok := rt.costFast(u128{0, uint64(q) * qtyOne})
				if !ok || !decimalOf(got, amountScale).Equal(want) {
					t.Fatalf("%s %+v: fast cost(%d) = %s (%v), by definition %s", v.Model, v, q, decimalOf(got, amountScale), ok, want)
				}
			}
		}
	}
}

// bruteForce is the model's cost by definition, and false for a quantity
// beyond a closed last tier without an above_last_tier price. Tier bounds
// from (issue 19): a graduated tier's flat fee is due once q reaches its
// lower bound; volume takes the tier with from <= q < up_to (0 in the first).
// Beyond a closed last tier the above_last_tier price is a tier of its own
// without a flat fee.
func bruteForce(v *catalog.RateTableVersion, q int64) (decimal.Decimal, bool) {
	from := v.TierBounds == catalog.BoundsFrom
	tiers := v.Tiers
	if n := len(tiers); n > 0 && tiers[n-1].UpTo != nil {
		last := tiers[n-1]
		beyond := decimal.NewFromInt(q).GreaterThan(*last.UpTo) || from && decimal.NewFromInt(q).Equal(*last.UpTo)
		if v.AboveLastTier == nil && beyond {
			return decimal.Zero, false
		}
		if v.AboveLastTier != nil {
			tiers = append(tiers[:len(tiers):len(tiers)], catalog.Tier{UnitPrice: v.AboveLastTier.UnitPrice})
		}
	}
	tierOf := func(u int64) int { // tier holding unit u
		for i, t := range tiers {
			if t.UpTo == nil || decimal.NewFromInt(u).LessThanOrEqual(*t.UpTo) {
				return i
			}
		}
		return len(tiers) - 1
	}
	total := decimal.Zero
	switch v.Model {
	case catalog.ModelGraduated:
		// Each tier's amount (its units and flat fee), bounded by the tier's
		// minimum and maximum once entered.
		amt := map[int]decimal.Decimal{}
		for u := int64(1); u <= q; u++ {
			i := tierOf(u)
			a, entered := amt[i]
			if !entered && !from {
				a = tiers[i].FlatFee
			}
			amt[i] = a.Add(tiers[i].UnitPrice)
		}
		if from {
			lower := decimal.Zero
			for i, t := range tiers {
				if decimal.NewFromInt(q).LessThan(lower) {
					break
				}
				amt[i] = amt[i].Add(t.FlatFee)
				if t.UpTo != nil {
					lower = *t.UpTo
				}
			}
		}
		for i, a := range amt {
			total = total.Add(bounded(a, tiers[i]))
		}
	case catalog.ModelVolume:
		i := -1
		switch {
		case from:
			for j, t := range tiers {
				if t.UpTo == nil || decimal.NewFromInt(q).LessThan(*t.UpTo) {
					i = j
					break
				}
			}
		case q > 0:
			i = tierOf(q)
		}
		if i >= 0 {
			t := tiers[i]
			for u := int64(1); u <= q; u++ {
				total = total.Add(t.UnitPrice)
			}
			total = bounded(total.Add(t.FlatFee), t)
		}
	case catalog.ModelPackage:
		p := v.Package
		rest := decimal.NewFromInt(q).Sub(p.FreeUnits)
		for rest.IsPositive() && (p.Rounding == "up" || rest.GreaterThanOrEqual(p.Size)) {
			total = total.Add(p.Price)
			rest = rest.Sub(p.Size)
		}
	case catalog.ModelOverage:
		for u := int64(1); u <= q; u++ {
			if decimal.NewFromInt(u).GreaterThan(v.Overage.Included) {
				total = total.Add(v.Overage.UnitPrice)
			}
		}
	}
	return total, true
}

// bounded applies a tier's minimum and maximum to its amount.
func bounded(a decimal.Decimal, t catalog.Tier) decimal.Decimal {
	if t.Minimum != nil && a.LessThan(*t.Minimum) {
		a = *t.Minimum
	}
	if t.Maximum != nil && a.GreaterThan(*t.Maximum) {
		a = *t.Maximum
	}
	return a
}

// TestFastPathEqualsDecimal: for random rate tables, fee bounds, quantity
// rounding, rounding modes, currencies and quantities (including ones past
// the fast path's range, where it must decline), the fixed-point path gives
// exactly the decimal path's result.
func TestFastPathEqualsDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 13))
	g := &gen{rng: rng, oi: true}
	modes := []money.Mode{money.HalfUp, money.Down, money.Up}
	checked := 0
	for i := 0; i < 20000; i++ {
		v := g.rateVersion()
		if v.Model == catalog.ModelPercentage {
			continue
		}
		v.Validity = since
		rt := compileRateTable(&catalog.RateTable{Code: "x", Versions: []catalog.RateTableVersion{v}}).versions[0]
		if !rt.fast {
			t.Fatalf("%+v: not on the fast path", v)
		}
		c := &Charge{rate: rt, fee: &feeVersion{}, el: &elementVersion{}, places: int32(rng.IntN(4)), mode: modes[rng.IntN(3)]}
		if rng.IntN(3) == 0 {
			c.fee.min = newBound(ptr(g.dec(40, 3)))
		}
		if rng.IntN(3) == 0 {
			c.fee.max = newBound(ptr(g.dec(40, 3).Add(decimal.NewFromInt(40))))
		}
		if rng.IntN(3) == 0 {
			inc := []string{"1", "60", "0.5", "0.001", "0.000000001", "7"}[rng.IntN(6)]
			fp, ok := fixedPrice(dec(inc))
			c.el.round = &quantityRounding{inc: dec(inc), incFast: fp, fast: ok, mode: modes[rng.IntN(3)]}
		}
		b, a := randomTally(rng), randomTally(rng)
		gb, okb := c.grossFast(b)
		if okb {
			if want := c.grossDec(b); !decimalOf(gb, amountScale).Equal(want) {
				t.Fatalf("%s %+v tally %+v: fast %s, decimal %s", v.Model, v, b, decimalOf(gb, amountScale), want)
			}
			checked++
		}
		if fl, ok := c.deltaFast(b, a); ok {
			dl, err := c.deltaDec(b, a)
			if err != nil || fl != dl {
				t.Fatalf("%s %+v: line fast %+v, decimal %+v (%v); tallies %+v %+v", v.Model, v, fl, dl, err, b, a)
			}
			c.RoundLine = !c.RoundLine
			fl, ok = c.deltaFast(b, a)
			if dl, err := c.deltaDec(b, a); ok && (err != nil || fl != dl) {
				t.Fatalf("%s line rounding: fast %+v, decimal %+v", v.Model, fl, dl)
			}
		}
	}
	if checked < 5000 {
		t.Fatalf("only %d comparisons on the fast path", checked)
	}
}

func ptr[T any](v T) *T { return &v }

func randomTally(rng *rand.Rand) tally {
	var q u128
	switch rng.IntN(6) {
	case 0:
		q = u128{0, uint64(rng.Int64N(100)) * qtyOne}
	case 1:
		q = u128{0, rng.Uint64N(100 * qtyOne)}
	case 2:
		q = u128{0, rng.Uint64()} // up to 1.8e10 units
	case 3:
		q = u128{rng.Uint64N(3), rng.Uint64()} // past the fast path
	case 4:
		q = u128{0, math.MaxUint64 - rng.Uint64N(3)}
	default:
		q = u128{0, rng.Uint64N(1e15)}
	}
	return tally{records: 1 + rng.Uint64N(3), qty: q}
}

// The arithmetic helpers against big decimals.
func TestFixedPointHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	modes := []money.Mode{money.HalfUp, money.Down, money.Up}
	for i := 0; i < 50000; i++ {
		a := u128{rng.Uint64N(1 << uint(rng.IntN(63))), rng.Uint64()}
		if rng.IntN(2) == 0 {
			a.hi = 0
		}
		places := int32(rng.IntN(4))
		mode := modes[rng.IntN(3)]
		want := money.Round(decimalOf(a, amountScale), places, mode)
		if got, ok := roundMinor(a, places, mode); ok {
			if !decimal.New(got, -places).Equal(want) {
				t.Fatalf("roundMinor(%s, %d, %s) = %d, want %s", decimalOf(a, amountScale), places, mode, got, want)
			}
		} else if _, fits := minorOf(want, places); fits && want.Shift(places).BigInt().Int64() < math.MaxInt64-1 {
			t.Fatalf("roundMinor declined %s", want)
		}
		b := u128{0, rng.Uint64()}
		if d, ok := roundDelta(b, a, places, mode); ok {
			want := money.Round(decimalOf(b, amountScale).Sub(decimalOf(a, amountScale)), places, mode)
			if !decimal.New(d, -places).Equal(want) {
				t.Fatalf("roundDelta = %d, want %s", d, want)
			}
		}
		// Conversions both ways.
		if back, ok := u128Of(decimalOf(a, qtyScale), qtyScale); !ok || back != a {
			t.Fatalf("u128Of(decimalOf(%v)) = %v %v", a, back, ok)
		}
		inc := 1 + rng.Uint64N(1e12)
		if r, ok := roundQuantityFast(a, inc, mode); ok {
			want := roundQuantityDec(decimalOf(a, qtyScale), decimalOf(u128{0, inc}, qtyScale), mode)
			if !decimalOf(r, qtyScale).Equal(want) {
				t.Fatalf("roundQuantityFast(%v, %d, %s) = %s, want %s", a, inc, mode, decimalOf(r, qtyScale), want)
			}
		}
		x, y := rng.Uint64(), rng.Uint64()
		if p, ok := a.mul64(x); ok {
			if p.big().Cmp(new(big.Int).Mul(a.big(), new(big.Int).SetUint64(x))) != 0 {
				t.Fatal("mul64")
			}
		} else if new(big.Int).Mul(a.big(), new(big.Int).SetUint64(x)).BitLen() <= 128 {
			t.Fatal("mul64 overflow reported wrongly")
		}
		q, r := a.divmod64(y | 1)
		if chk := new(big.Int).Add(new(big.Int).Mul(q.big(), new(big.Int).SetUint64(y|1)), new(big.Int).SetUint64(r)); chk.Cmp(a.big()) != 0 {
			t.Fatal("divmod64")
		}
	}
	for _, s := range []string{"0", "1", "0.000000001", "123456789.123456789", "999999999999999999.999999999", "1e20", "1.50", "1.5000000000"} {
		d := dec(s)
		v, ok := u128Of(d, qtyScale)
		if !ok || !decimalOf(v, qtyScale).Equal(d) {
			t.Errorf("u128Of(%s) = %v %v", s, v, ok)
		}
	}
	for _, s := range []string{"-1", "0.0000000001", "1e40"} {
		if _, ok := u128Of(dec(s), qtyScale); ok {
			t.Errorf("u128Of(%s) accepted", s)
		}
	}
}

// FuzzFastPath compares the paths on fuzzed per-unit and graduated prices and
// quantities (seeds run in go test; `go test -fuzz FuzzFastPath` explores).
func FuzzFastPath(f *testing.F) {
	f.Add(uint64(10), uint64(5), uint64(1000000000), uint64(7), uint8(0), uint8(0))
	f.Add(uint64(1<<62), uint64(3), uint64(999999999), uint64(1), uint8(1), uint8(2))
	f.Add(uint64(0), uint64(0), uint64(1), uint64(1), uint8(2), uint8(3))
	f.Fuzz(func(t *testing.T, q, bound, price1, price2 uint64, mode, places uint8) {
		bound %= 1 << 40
		price1 %= 1 << 50
		price2 %= 1 << 50
		v := catalog.RateTableVersion{Validity: since, Model: catalog.ModelGraduated, Tiers: []catalog.Tier{
			{UpTo: ptr(decimal.New(int64(bound)+1, -3)), UnitPrice: decimal.New(int64(price1), -9), FlatFee: decimal.New(int64(price2), -6)},
			{UnitPrice: decimal.New(int64(price2), -9)},
		}}
		for _, m := range []catalog.Model{catalog.ModelGraduated, catalog.ModelVolume} {
			v.Model = m
			rt := compileRateTable(&catalog.RateTable{Code: "x", Versions: []catalog.RateTableVersion{v}}).versions[0]
			c := &Charge{rate: rt, fee: &feeVersion{}, el: &elementVersion{}, places: int32(places % 4),
				mode: []money.Mode{money.HalfUp, money.Down, money.Up}[mode%3]}
			tl := tally{records: 1, qty: u128{0, q}}
			if got, ok := c.grossFast(tl); ok && !decimalOf(got, amountScale).Equal(c.grossDec(tl)) {
				t.Fatalf("%s q=%d: fast %s, decimal %s", m, q, decimalOf(got, amountScale), c.grossDec(tl))
			}
			if fl, ok := c.deltaFast(tally{}, tl); ok {
				if dl, _ := c.deltaDec(tally{}, tl); fl != dl {
					t.Fatalf("%s q=%d: line fast %+v, decimal %+v", m, q, fl, dl)
				}
			}
		}
	})
}
