// Package pricing prices usage records against a tenant's catalogue and
// contracts (catalog), exactly and incrementally. It is pure: no I/O,
// no clock; the rater stage keeps the running states and emits the lines.
//
// # Using it
//
// Compile a catalogue once (Compile), then for each event:
//
//	charges, err := engine.Resolve(&ev, buf)   // *Unrated with a reason code on failure
//	for i := range charges {
//		st := load(charges[i].Key)             // State, e.g. from Redis (UnmarshalBinary)
//		line, err := charges[i].Apply(&st, &ev) // line = cost(after) − cost(before)
//		save(charges[i].Key, st)               // AppendBinary
//	}
//
// An invalidated record is taken back out with Charge.Remove (the reversing
// line), or ErrNeedsRecompute says the period must be re-rated (RatePeriod).
// Fixed fees come from FixedCharges(contract, period).
//
// # Resolution
//
// The customer's service contract active on the event's civil day in its
// basic contract's time zone (the one the record names; otherwise exactly one
// contract's plan may meter the element, else ambiguous_contract), its price
// plan term of that day, the plan version valid at the event's instant, and
// each metered fee of that version on the event's element with the fee,
// element and rate-table versions valid at the instant. The rates entry whose
// match has the most keys, all equal to the event's attributes, wins; equal
// specificity is ambiguous_rate. A fee none of whose rates entries matches
// makes the record unpriced (no_rate), unless the plan version's
// unmatched_rates is skip: then that fee does not apply to the record (fees
// restricted by attribute) and no_rate only when no fee applies. Reason
// codes are schemas.Reason*.
//
// # Running charges and periods
//
// A running charge is keyed by tenant, customer, contract, fee, rate table,
// split_by values and billing period. Periods are civil days in the basic
// contract's time zone: closing day 0 is the calendar month; closing day d
// ends the period at the end of day d, and the period is labelled by the
// month it ends in ("YYYY-MM"). A basic contract's billing_period weekly
// makes each week (from its week_start, Monday by default) a period,
// labelled by its first day ("YYYY-MM-DD/P1W"), and daily each civil day
// ("YYYY-MM-DD"). Fixed fees recur on their own cycle (monthly by the
// closing day, weekly from the week start, daily, yearly by service year)
// and are charged in the billing period holding their bill day; a partial
// week is pro-rated by whole days, covered days / 7 (FixedCharges).
//
// A plan version's rating_group (Zuora's usage rating by group) splits a
// period's records of per_unit, graduated and volume rates into groups,
// each a running charge of its own (Key.Group) priced on its own: by usage
// start date (the record's civil day), by usage record (each record), by
// upload (the import job of schemas.UsageEvent.Import; API records are one
// group); the default is the billing period. Other models rate by billing
// period.
//
// # Models (a quantity q is the period's aggregated quantity)
//
//   - per_unit: q × price.
//   - graduated: each tier's units at its price; a tier's flat fee is charged
//     once q enters the tier (q > its lower bound). Bounds are inclusive upper
//     bounds (up_to), so q exactly on a bound stays in the lower tier.
//   - volume: all of q at the price of the tier q reaches (lower < q ≤
//     up_to), plus that tier's flat fee; q = 0 costs nothing.
//   - tier_bounds from (either model): every bound is the inclusive lower
//     end of the next tier instead (q = 50 is in the tier ">= 50"): a
//     graduated tier's flat fee is due once q >= its lower bound, a volume
//     tier is lower <= q < up_to, and q = 0 is in the first tier.
//   - a closed last tier (one with up_to): the quantity beyond it is priced
//     by the version's above_last_tier unit price (an open tier without flat
//     fee: graduated the units beyond, volume all units), or, without one, a
//     record taking the period's quantity beyond it is unrated
//     (above_last_tier) and the state is unchanged.
//   - package: blocks of size after free units, partial blocks up or down, ×
//     price.
//   - overage: (q − included)⁺ × price.
//   - percentage: each record is a transaction priced on arrival: rate ×
//     amount + fixed fee, bounded per transaction, with the free allowance of
//     catalog.Percentage (Lago's model); the element's aggregation does not
//     apply (the running quantity is the sum of amounts).
//   - capacity (Kill Bill's capacity usage): the fee takes the peak of each
//     unit of the table (an element; the largest quantity of one record of it
//     in the period) and charges the price of the first tier whose limits all
//     the peaks fit; records of every unit's element add to the one running
//     charge, the elements' aggregation and rounding do not apply, and peaks
//     fitting no tier make the record unrated (above_last_tier). Its lines are
//     deltas like every running model's (a record moving the peaks into a
//     dearer tier charges the difference). Removing a record below its unit's
//     peak is a zero line; removing one at the peak is ErrNeedsRecompute.
//
// A tier's minimum and maximum bound that tier's amount (graduated: its
// units and flat fee once entered; volume: the amount of the tier reached);
// a rates entry's minimum and maximum bound the model's amount of the
// charges it prices, before the fee's. Fee minimum and maximum bound the
// model's amount per period; the minimum
// applies once the period has usage (a charge with no record costs nothing,
// the first record's line carries the minimum). A plan version with
// minimum_without_usage also charges the minimum of a fee without any record
// in the period, as a line of its own (IdleMinimums). A plan version's
// commitment is a minimum spend per period across its fees, billed as its
// own true-up line (TrueUp: commitment − used, never negative). Quantity rules come from the
// element: aggregation sum, max, count, unique_count (distinct values of an
// attribute; the state keeps a 128-bit hash and a count per value) or latest
// (by event time, ties by event id hash); quantity rounding to a multiple of
// an increment per record (before aggregation) or per period (before
// pricing).
//
// Discounts come from the customer's discount contracts active on the event's
// day whose service is the charge's service contract's service and whose
// scope (customer, contract, plan, fee) covers the charge: a discount
// contract never discounts another service's charges, and one whose service
// the customer has no contract for discounts nothing. A discount contract
// without a service is customer-wide: it covers every service contract of
// the customer (its scope still narrows it). They
// apply to each running charge on its own, in (order, id), each on what the
// earlier ones left: percentage or fixed amount of the tier chosen by the
// charge's quantity or by the amount it applies to; never below zero unless
// the table allows credit. A fixed discount is therefore taken off every
// charge in its scope (scope it to a fee to take it once). On a pro-rated
// fixed fee a fixed discount is pro-rated by the fee's factor (FixedCharges).
//
// # Time-weighted quantities
//
// Usage that is a state over time (seats provisioned, gigabytes stored) is
// aggregated as level × time rather than summed: LevelChange sets a level
// from its instant until the next change; DayQuantities gives each civil
// day's fraction held times the level (a whole day at 1 is 1, half a day
// 0.5; the day's real length on a DST change), TimeWeighted the sum over
// days (UnitDay: seat-days) or the level-time over the whole range divided
// by its length (UnitPeriod: GB-months), a quantity Cost can price. Level ×
// time is exact; the one division per day (or per range) is rounded half
// away from zero at 10^-9. The usage reports (package reports) use it.
//
// An element with aggregation time_weighted (time_unit day or period) is
// priced that way: each record sets the level of its charge from its time
// on, and the charge's amount is the level-time of its whole billing period
// priced like any period quantity. It depends on time still to come, so the
// stream's lines of such a charge are zero and the amount is priced once
// the period has ended (Batch.PeriodEnd from RatePeriod over the period's
// records; see PeriodEndLine, Batch.PeriodEndOf): the rater's fixed-fee
// emitter writes that amount as a line once the period ended, the billing
// run bills the same, and a commitment counts it (PeriodLines). The level
// starts at zero in each period.
// Invalidating a level change is ErrNeedsRecompute (the level before it
// holds until the next change).
//
// # Money
//
// Amounts are exact: decimal.Decimal, or on the fast path 128-bit integers
// at 10^-18 (quantities and prices at 10^-9); the fast path is used when every
// number fits and there are no discounts, and is proven equal to the decimal
// path by TestFastPathEqualsDecimal. Rounding uses money's modes and
// the basic contract's currency at the plan's rounding point: period (line =
// round(after) − round(before), so a charge's lines sum to its rounded
// period total) or line (each line's raw difference rounded), or receivable:
// lines as with period but at the plan's precision (up to 9 places, finer
// than the minor unit; Line.Places says which), the receivable rounding the
// customer's total.
//
// A line is priced with the versions valid at its event's time. When a
// version changes inside a period the period's charge therefore depends on
// the order the records are applied in; RatePeriod replays in the order given
// (the stream's), so re-rating reproduces the stream.
package pricing
