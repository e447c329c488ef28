package pricing

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
)

// modelCase prices a sequence of records (one running charge) and checks
// the total the lines sum to, and optionally every line.
type modelCase struct {
	name     string
	rt       catalog.RateTableVersion
	currency string
	opts     []func(*catalog.Catalogue)
	qtys     []string
	total    string  // currency units
	lines    []int64 // minor units, when checked
}

func runModelCases(t *testing.T, cases []modelCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := tc.currency
			if cur == "" {
				cur = "JPY"
			}
			c, _ := money.LookupCurrency(cur)
			for _, fast := range []bool{true, false} {
				e := compile(t, oneFee(tc.rt, cur, tc.opts...))
				e.noFast = !fast
				lines, total := rateQuantities(t, e, tc.qtys...)
				if want := minor(tc.total, c.Places); total != want {
					t.Errorf("fast=%v: total %d minor units, want %d (%s %s); lines %v", fast, total, want, tc.total, cur, lines)
				}
				if tc.lines != nil && !reflect.DeepEqual(lines, tc.lines) {
					t.Errorf("fast=%v: lines %v, want %v", fast, lines, tc.lines)
				}
			}
		})
	}
}

func perUnit(price string) catalog.RateTableVersion {
	return catalog.RateTableVersion{Model: catalog.ModelPerUnit, UnitPrice: decp(price)}
}

func TestPerUnit(t *testing.T) {
	runModelCases(t, []modelCase{
		{name: "integer", rt: perUnit("3"), qtys: []string{"2", "5"}, total: "21", lines: []int64{6, 15}},
		{name: "zero quantity", rt: perUnit("3"), qtys: []string{"0", "0"}, total: "0", lines: []int64{0, 0}},
		{name: "price finer than the yen", rt: perUnit("0.037"), qtys: []string{"1234.5"}, total: "46"}, // 45.6765
		{name: "nine decimal places", rt: perUnit("0.000000001"), qtys: []string{"999999999.999999999"}, total: "1"},
		// OpenMeter's per-unit example: $0.01 per token, 10,000 tokens = $100.
		// https://openmeter.io/docs/billing/product-catalog/pricing-models
		{name: "OpenMeter per unit", rt: perUnit("0.01"), currency: "USD", qtys: []string{"10000"}, total: "100.00"},
		// Quantities beyond the fast path (≥ 2^64 × 10^-9) are still exact.
		{name: "huge quantity", rt: perUnit("2"), qtys: []string{"999999999999999999", "999999999999999999"}, total: "3999999999999999996"},
	})
}

// Rounding in each mode and currency, at both rounding points.
func TestRoundingModesAndCurrencies(t *testing.T) {
	type rc struct {
		cur, price string
		mode       money.Mode
		line       bool
		qtys       []string
		lines      []int64
	}
	cases := []rc{
		// JPY (0 places): 1.5 per record.
		{"JPY", "1.5", money.HalfUp, false, []string{"1", "1", "1"}, []int64{2, 1, 2}}, // 1.5→2, 3→3, 4.5→5
		{"JPY", "1.5", money.Down, false, []string{"1", "1", "1"}, []int64{1, 2, 1}},   // 1, 3, 4
		{"JPY", "1.5", money.Up, false, []string{"1", "1", "1"}, []int64{2, 1, 2}},     // 2, 3, 5
		{"JPY", "1.5", money.HalfUp, true, []string{"1", "1", "1"}, []int64{2, 2, 2}},  // each 1.5→2
		{"JPY", "1.5", money.Down, true, []string{"1", "1", "1"}, []int64{1, 1, 1}},
		{"JPY", "0.4", money.HalfUp, false, []string{"1", "1", "1"}, []int64{0, 1, 0}}, // 0, 0.8→1, 1.2→1
		{"JPY", "0.4", money.HalfUp, true, []string{"1", "1", "1"}, []int64{0, 0, 0}},  // lines lose the remainder
		// USD (2 places): 0.0125 per record.
		{"USD", "0.0125", money.HalfUp, false, []string{"1", "1"}, []int64{1, 2}}, // 0.01 (0.0125), 0.03 (0.025)
		{"USD", "0.0125", money.Down, false, []string{"1", "1"}, []int64{1, 1}},   // 0.01, 0.02
		{"USD", "0.0125", money.Up, false, []string{"1", "1"}, []int64{2, 1}},     // 0.02, 0.03
		{"USD", "0.0125", money.Up, true, []string{"1", "1"}, []int64{2, 2}},
		// BHD (3 places): 0.0005 per record.
		{"BHD", "0.0005", money.HalfUp, false, []string{"1", "1", "1"}, []int64{1, 0, 1}}, // 0.001, 0.001, 0.002
		{"BHD", "0.0005", money.Down, false, []string{"1", "1", "1"}, []int64{0, 1, 0}},   // 0, 0.001, 0.001
		{"BHD", "0.0005", money.Up, true, []string{"1", "1", "1"}, []int64{1, 1, 1}},
	}
	for _, tc := range cases {
		opts := []func(*catalog.Catalogue){withMode(tc.mode)}
		if tc.line {
			opts = append(opts, withLineRounding)
		}
		for _, fast := range []bool{true, false} {
			e := compile(t, oneFee(perUnit(tc.price), tc.cur, opts...))
			e.noFast = !fast
			lines, _ := rateQuantities(t, e, tc.qtys...)
			if !reflect.DeepEqual(lines, tc.lines) {
				t.Errorf("%s %s %s line=%v fast=%v: lines %v, want %v", tc.cur, tc.price, tc.mode, tc.line, fast, lines, tc.lines)
			}
		}
	}
}

func graduated(t ...[3]string) catalog.RateTableVersion {
	return catalog.RateTableVersion{Model: catalog.ModelGraduated, Tiers: tiers(t...)}
}

func volume(t ...[3]string) catalog.RateTableVersion {
	return catalog.RateTableVersion{Model: catalog.ModelVolume, Tiers: tiers(t...)}
}

func TestGraduated(t *testing.T) {
	g := graduated([3]string{"10", "1", "0"}, [3]string{"20", "0.5", "5"}, [3]string{"", "0.1", "0"})
	runModelCases(t, []modelCase{
		{name: "inside the first tier", rt: g, qtys: []string{"4"}, total: "4"},
		{name: "exactly on the boundary stays in the lower tier", rt: g, qtys: []string{"10"}, total: "10"},
		{name: "one past the boundary enters the tier and pays its flat fee", rt: g, qtys: []string{"11"}, total: "16", lines: []int64{16}}, // 10 + 0.5 + 5 = 15.5
		{name: "a tiny step past the boundary", rt: g, currency: "USD", qtys: []string{"10", "0.000000001"}, total: "15.00"},                // 15.0000000005
		{name: "crossing in steps", rt: g, qtys: []string{"9", "1", "1", "9", "1"}, total: "20", lines: []int64{9, 1, 6, 4, 0}},             // 9, 10, 15.5→16, 20, 20.1→20
		{name: "zero quantity", rt: g, qtys: []string{"0"}, total: "0"},
		{name: "second boundary", rt: g, currency: "USD", qtys: []string{"20", "1"}, total: "20.10"},
		// Stripe's tiers (1-5: $7, 6-10: $6.50, 11+: $6): "5 fonts result in the same
		// charge as volume-based pricing: 35 USD total".
		// https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing
		{name: "Stripe graduated 5 fonts", rt: graduated([3]string{"5", "7", "0"}, [3]string{"10", "6.5", "0"}, [3]string{"", "6", "0"}),
			currency: "USD", qtys: []string{"5"}, total: "35.00"},
		// Zuplo: tiers 0-1,000 $0.10, 1,001-10,000 $0.05, 10,001+ $0.01; 15,000 units
		// = $100 + $450 + $50 = $600. https://zuplo.com/docs/articles/monetization/pricing-models
		{name: "Zuplo graduated", rt: graduated([3]string{"1000", "0.10", "0"}, [3]string{"10000", "0.05", "0"}, [3]string{"", "0.01", "0"}),
			currency: "USD", qtys: []string{"15000"}, total: "600.00"},
		// Autumn: first 1,000 at $0.01, next 9,000 at $0.008, above at $0.005; 15,000
		// requests = $107. https://docs.useautumn.com/documentation/modelling-pricing/graduated-pricing
		{name: "Autumn graduated", rt: graduated([3]string{"1000", "0.01", "0"}, [3]string{"10000", "0.008", "0"}, [3]string{"", "0.005", "0"}),
			currency: "USD", qtys: []string{"7000", "8000"}, total: "107.00"},
	})
}

func TestVolume(t *testing.T) {
	v := volume([3]string{"10", "2", "0"}, [3]string{"20", "1", "5"}, [3]string{"", "0.5", "0"})
	runModelCases(t, []modelCase{
		{name: "exactly on the boundary", rt: v, qtys: []string{"10"}, total: "20"},
		{name: "past the boundary: cheaper tier and its flat fee, a negative line", rt: v, qtys: []string{"10", "1"}, total: "16", lines: []int64{20, -4}},
		{name: "zero quantity", rt: v, qtys: []string{"0"}, total: "0"},
		{name: "open tier", rt: v, qtys: []string{"20", "1"}, total: "11", lines: []int64{25, -14}}, // 20×1+5=25, 21×0.5=10.5→11
		// Stripe's volume table (1-5: $7, 6-10: $6.50, 11+: $6): 1→7, 5→35, 6→39, 20→120,
		// 25→150 USD. https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing
		{name: "Stripe volume 1", rt: stripeVolume, currency: "USD", qtys: []string{"1"}, total: "7.00"},
		{name: "Stripe volume 5", rt: stripeVolume, currency: "USD", qtys: []string{"5"}, total: "35.00"},
		{name: "Stripe volume 6", rt: stripeVolume, currency: "USD", qtys: []string{"5", "1"}, total: "39.00", lines: []int64{3500, 400}},
		{name: "Stripe volume 20", rt: stripeVolume, currency: "USD", qtys: []string{"20"}, total: "120.00"},
		{name: "Stripe volume 25", rt: stripeVolume, currency: "USD", qtys: []string{"10", "10", "5"}, total: "150.00"},
		// Zuplo's volume example on the graduated tiers above: 15,000 × $0.01 = $150.
		// https://zuplo.com/docs/articles/monetization/pricing-models
		{name: "Zuplo volume", rt: volume([3]string{"1000", "0.10", "0"}, [3]string{"10000", "0.05", "0"}, [3]string{"", "0.01", "0"}),
			currency: "USD", qtys: []string{"15000"}, total: "150.00"},
	})
}

var stripeVolume = volume([3]string{"5", "7", "0"}, [3]string{"10", "6.5", "0"}, [3]string{"", "6", "0"})

func pkg(size, price, rounding, free string) catalog.RateTableVersion {
	return catalog.RateTableVersion{Model: catalog.ModelPackage, Package: &catalog.Package{Size: dec(size), Price: dec(price),
		Rounding: rounding, FreeUnits: dec(free)}}
}

func TestPackage(t *testing.T) {
	runModelCases(t, []modelCase{
		{name: "free units only", rt: pkg("100", "5", "up", "10"), qtys: []string{"10"}, total: "0"},
		{name: "partial block rounded up", rt: pkg("100", "5", "up", "10"), qtys: []string{"11"}, total: "5"},
		{name: "exactly one block", rt: pkg("100", "5", "up", "10"), qtys: []string{"110"}, total: "5"},
		{name: "one unit into the next block", rt: pkg("100", "5", "up", "10"), qtys: []string{"110", "1"}, total: "10", lines: []int64{5, 5}},
		{name: "partial block rounded down", rt: pkg("100", "5", "down", "0"), qtys: []string{"199"}, total: "5"},
		{name: "zero quantity", rt: pkg("100", "5", "up", "0"), qtys: []string{"0"}, total: "0"},
		// Stripe: $10 for every 5 users or portion thereof: 1→$10, 3→$10, 5→$10, 6→$20,
		// 7→$20. https://stripe.com/docs/billing/subscriptions/quantity-transformation
		{name: "Stripe per 5 users", rt: pkg("5", "10", "up", "0"), currency: "USD", qtys: []string{"1", "2", "2", "1", "1"},
			total: "20.00", lines: []int64{1000, 0, 0, 1000, 0}},
		// Stripe: $10 per hour, usage in minutes, rounded up: 150 minutes → $30.
		// https://docs.stripe.com/billing/subscriptions/usage-based/transform-quantities
		{name: "Stripe car rental", rt: pkg("60", "10", "up", "0"), currency: "USD", qtys: []string{"150"}, total: "30.00"},
		// Chargebee: $1.25 per 1M tokens, whole packages: 10 tokens → $1.25, 1,000,000 →
		// $1.25, 1,500,000 → $2.50. https://www.chargebee.com/docs/billing/2.0/product-catalog/package-pricing
		{name: "Chargebee 10 tokens", rt: pkg("1000000", "1.25", "up", "0"), currency: "USD", qtys: []string{"10"}, total: "1.25"},
		{name: "Chargebee 1M tokens", rt: pkg("1000000", "1.25", "up", "0"), currency: "USD", qtys: []string{"1000000"}, total: "1.25"},
		{name: "Chargebee 1.5M tokens", rt: pkg("1000000", "1.25", "up", "0"), currency: "USD", qtys: []string{"1000000", "500000"}, total: "2.50"},
	})
}

func TestOverage(t *testing.T) {
	o := catalog.RateTableVersion{Model: catalog.ModelOverage, Overage: &catalog.Overage{Included: dec("100"), UnitPrice: dec("9.8")}}
	runModelCases(t, []modelCase{
		{name: "within the included quantity", rt: o, qtys: []string{"100"}, total: "0"},
		{name: "one over", rt: o, qtys: []string{"100", "1"}, total: "10", lines: []int64{0, 10}},
		{name: "fractions over", rt: o, currency: "USD", qtys: []string{"99.5", "1"}, total: "4.90"},
	})
}

func TestPercentage(t *testing.T) {
	lago := catalog.RateTableVersion{Model: catalog.ModelPercentage, Percentage: &catalog.Percentage{
		Rate: dec("0.012"), FixedFee: dec("0.10"), FreeTransactions: 3, FreeAmount: dec("500")}}
	minmax := catalog.RateTableVersion{Model: catalog.ModelPercentage, Percentage: &catalog.Percentage{
		Rate: dec("0.029"), FixedFee: dec("0.30"), MinPerTransaction: decp("0.50"), MaxPerTransaction: decp("5")}}
	freeAmount := catalog.RateTableVersion{Model: catalog.ModelPercentage, Percentage: &catalog.Percentage{
		Rate: dec("0.01"), FixedFee: dec("1"), FreeAmount: dec("100")}}
	freeTx := catalog.RateTableVersion{Model: catalog.ModelPercentage, Percentage: &catalog.Percentage{
		Rate: dec("0.01"), FixedFee: dec("1"), FreeTransactions: 1}}
	runModelCases(t, []modelCase{
		// Lago: 1.2 % + $0.10, first 3 events or $500 free; transactions $200, $100,
		// $100 are free, the fourth ($50) costs $0.10 + 1.2 % of $50 = $0.70.
		// https://getlago.com/docs/guide/plans/charges/charge-models/percentage
		{name: "Lago free units", rt: lago, currency: "USD", qtys: []string{"200", "100", "100", "50"}, total: "0.70", lines: []int64{0, 0, 0, 70}},
		// 2.9 % + 0.30 per transaction, at least 0.50, at most 5.
		{name: "per-transaction minimum", rt: minmax, currency: "USD", qtys: []string{"5"}, total: "0.50"},                                    // 0.445 → 0.50
		{name: "per-transaction maximum", rt: minmax, currency: "USD", qtys: []string{"1000"}, total: "5.00"},                                 // 29.30 → 5
		{name: "between the bounds", rt: minmax, currency: "USD", qtys: []string{"100", "0"}, total: "3.70"},                                  // 3.20 + 0.50
		{name: "free amount then percentage of the excess", rt: freeAmount, currency: "USD", qtys: []string{"60", "60", "10"}, total: "3.30"}, // 1 + (1+0.2) + (1+0.1)
		{name: "free transactions pay only the percentage", rt: freeTx, currency: "USD", qtys: []string{"100", "100"}, total: "3.00"},         // 1 + (1+1)
	})
}

// Fee-level minimum (once the period has usage) and maximum. Zuora's
// charge-level examples: CA $10/unit, min $100, max $200: 8 units → $100; NY
// $12/unit, min $120, max $240: 25 units → $240, 10 units → $120.
// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/dynamic-pricing/use-cases/charge-level-minmax-rules-for-per-unit-pricing
func TestFeeMinimumMaximum(t *testing.T) {
	bounds := func(min, max string) func(*catalog.Catalogue) {
		return withFee(func(v *catalog.FeeVersion) { v.Minimum, v.Maximum = decp(min), decp(max) })
	}
	runModelCases(t, []modelCase{
		{name: "Zuora CA minimum", rt: perUnit("10"), currency: "USD", opts: []func(*catalog.Catalogue){bounds("100", "200")},
			qtys: []string{"8"}, total: "100.00"},
		{name: "Zuora NY maximum", rt: perUnit("12"), currency: "USD", opts: []func(*catalog.Catalogue){bounds("120", "240")},
			qtys: []string{"25"}, total: "240.00"},
		{name: "Zuora NY within", rt: perUnit("12"), currency: "USD", opts: []func(*catalog.Catalogue){bounds("120", "240")},
			qtys: []string{"10"}, total: "120.00"},
		{name: "minimum is carried by the first line", rt: perUnit("10"), opts: []func(*catalog.Catalogue){bounds("100", "200")},
			qtys: []string{"1", "5", "6", "10"}, total: "200", lines: []int64{100, 0, 20, 80}},
		{name: "minimum applies to a zero-quantity record", rt: perUnit("10"), opts: []func(*catalog.Catalogue){bounds("100", "200")},
			qtys: []string{"0"}, total: "100"},
	})
}

func TestQuantityRules(t *testing.T) {
	agg := func(a catalog.Aggregation) func(*catalog.Catalogue) {
		return withElement(func(v *catalog.ElementVersion) { v.Aggregation = a })
	}
	rounding := func(inc, mode, scope string) func(*catalog.Catalogue) {
		return withElement(func(v *catalog.ElementVersion) {
			v.Rounding = &catalog.QuantityRounding{Increment: dec(inc), Mode: mode, Scope: scope}
		})
	}
	g := graduated([3]string{"5", "1", "0"}, [3]string{"", "10", "0"})
	runModelCases(t, []modelCase{
		{name: "max", rt: g, opts: []func(*catalog.Catalogue){agg(catalog.AggMax)}, qtys: []string{"5", "3", "7", "7"}, total: "25", lines: []int64{5, 0, 20, 0}},
		{name: "count", rt: g, opts: []func(*catalog.Catalogue){agg(catalog.AggCount)}, qtys: []string{"100", "0", "5", "1", "1", "1"}, total: "15"},
		{name: "seconds up to minutes per record", rt: perUnit("1"), opts: []func(*catalog.Catalogue){rounding("60", "up", "record")},
			qtys: []string{"61", "59"}, total: "180"},
		{name: "seconds up to minutes per period", rt: perUnit("1"), opts: []func(*catalog.Catalogue){rounding("60", "up", "period")},
			qtys: []string{"61", "59"}, total: "120", lines: []int64{120, 0}},
		{name: "half up per period", rt: perUnit("1"), opts: []func(*catalog.Catalogue){rounding("10", "half_up", "period")},
			qtys: []string{"4", "1", "0.000000001"}, total: "10", lines: []int64{0, 10, 0}},
		{name: "down per record", rt: perUnit("1"), opts: []func(*catalog.Catalogue){rounding("0.5", "down", "record")},
			qtys: []string{"0.7", "0.49"}, total: "1"}, // 0.5 + 0 = 0.5 → 1 (half_up)
	})
}

// A line that cannot be represented exactly (beyond int64 minor units, far
// below the store's 10^28) is refused as amount_overflow, never emitted, and
// the running state is left as it was: the stage parks the record on
// usage.unrated. The catalogue here is compiled without Validate, as one
// stored before prices were bounded (unit_price 10^38 − 1) would be.
func TestUnstorableLineIsUnrated(t *testing.T) {
	tests := []struct {
		name, price, qty string
		overflow         bool
	}{
		{"price 10^38 − 1", "99999999999999999999999999999999999999", "1", true},
		{"largest price, largest quantity", "9999999999.999999999", "999999999999999999.999999999", true},
		{"largest price, quantity 1", "9999999999.999999999", "1", false},
		{"price 1, largest quantity", "1", "999999999999999999.999999999", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(oneFee(perUnit(tt.price), "JPY"))
			if err != nil {
				t.Fatal(err)
			}
			ev := event("x", march, tt.qty)
			charges, err := e.Resolve(&ev, nil)
			if err != nil {
				t.Fatal(err)
			}
			var st State
			empty, _ := st.MarshalBinary()
			line, err := charges[0].Apply(&st, &ev)
			if got := reasonOf(err); tt.overflow && got != schemas.ReasonOverflow {
				t.Fatalf("line %+v, err %v; want %s", line, err, schemas.ReasonOverflow)
			} else if !tt.overflow && err != nil {
				t.Fatal(err)
			}
			if b, _ := st.MarshalBinary(); tt.overflow && !bytes.Equal(b, empty) {
				t.Errorf("state changed by a refused record: %+v", st)
			}
		})
	}
}
