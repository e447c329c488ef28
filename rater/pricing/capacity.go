package pricing

import (
	"slices"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Capacity charges (catalog.Capacity, Kill Bill's capacity usage). A
// capacity fee is keyed like any running charge; its state keeps the peak
// of each unit (the largest quantity of one record of that unit's element
// in the period) in State.peaks, and its amount is the price of the first
// tier whose limits all the peaks fit. Its lines are deltas like every
// running model's: the first record's line charges the first tier it fits,
// a record raising a peak into a dearer tier charges the difference, and
// the batch (RatePeriod) gives the same lines from the same states.

// aggCapacity is the state's aggregation code of a capacity charge.
const aggCapacity uint8 = 6

// capacityElement stands in for the element version of a capacity charge:
// the elements' aggregation and quantity rounding do not apply.
var capacityElement = &elementVersion{span: span{to: 1<<63 - 1}, agg: "capacity", aggCode: aggCapacity}

// capacitySpec is a compiled capacity table.
type capacitySpec struct {
	units []string // element codes; a unit's peak is State.peaks[index]
	tiers []capacityTier
}

type capacityTier struct {
	limit   [catalog.MaxCapacityUnits]u128 // the largest peak × 10^9 of each unit
	bounded [catalog.MaxCapacityUnits]bool // false: the tier does not bound the unit
	price   decimal.Decimal
	amt     u128 // price × 10^18 (when amtOK)
	amtOK   bool
}

func compileCapacity(c *catalog.Capacity) (*capacitySpec, bool) {
	out := &capacitySpec{units: c.Units}
	fast := true
	for _, t := range c.Tiers {
		ct := capacityTier{price: t.Price}
		ct.amt, ct.amtOK = u128Of(t.Price, amountScale)
		fast = fast && ct.amtOK
		for i, u := range c.Units {
			if i >= catalog.MaxCapacityUnits {
				break
			}
			if lim, ok := t.Limits[u]; ok {
				l, fits := u128Of(lim, qtyScale)
				if !fits { // beyond the exact range: no peak can pass it
					continue
				}
				ct.limit[i], ct.bounded[i] = l, true
			}
		}
		out.tiers = append(out.tiers, ct)
	}
	return out, fast
}

// unit is the index of an element among the table's units (-1: not one).
func (c *capacitySpec) unit(element string) int {
	return slices.Index(c.units, element)
}

// tier is the first tier whose limits the peaks fit (nil: none).
func (c *capacitySpec) tier(peaks *[catalog.MaxCapacityUnits]u128) *capacityTier {
	for i := range c.tiers {
		t := &c.tiers[i]
		fits := true
		for u := range c.units {
			if t.bounded[u] && peaks[u].cmp(t.limit[u]) > 0 {
				fits = false
				break
			}
		}
		if fits {
			return t
		}
	}
	return nil
}

// checkCapacity refuses a state whose peaks fit no tier: the record is
// unrated (above_last_tier), the state unchanged.
func (c *Charge) checkCapacity(t tally) error {
	if t.records == 0 || c.rate.capacity.tier(t.peaks) != nil {
		return nil
	}
	return unrated(schemas.ReasonAboveLastTier, "the period's peaks of fee %q fit no tier of capacity rate table %q (peak %s of unit %q)",
		c.Key.Fee, c.Key.Rate, decimalOf(t.peaks[c.unit], qtyScale), c.rate.capacity.units[c.unit])
}

// capacityDec is the price of the tier the peaks reach (zero when none:
// refused before pricing).
func (r *rateVersion) capacityDec(t tally) decimal.Decimal {
	if tr := r.capacity.tier(t.peaks); tr != nil {
		return tr.price
	}
	return decimal.Zero
}

// capacityFast is capacityDec on the fast path.
func (r *rateVersion) capacityFast(t tally) (u128, bool) {
	if tr := r.capacity.tier(t.peaks); tr != nil {
		return tr.amt, tr.amtOK
	}
	return u128{}, true
}
