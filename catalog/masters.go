package catalog

import (
	"fmt"
	"slices"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Service is the service master (サービスマスタ): what a service contract
// subscribes to. A service may have a parent; options are services of kind
// "option" attached to a parent.
type Service struct {
	Code     string           `json:"code"`
	Name     string           `json:"name"`
	Versions []ServiceVersion `json:"versions"`
}

// ServiceVersion is one effective-dated version of a service.
type ServiceVersion struct {
	Validity
	Kind   ServiceKind `json:"kind"`             // service or option
	Parent string      `json:"parent,omitempty"` // parent service code
	Plans  []string    `json:"plans,omitempty"`  // price plans a contract may choose
}

// ServiceKind distinguishes a service from an option of a parent service.
type ServiceKind string

// Service kinds.
const (
	KindService ServiceKind = "service"
	KindOption  ServiceKind = "option"
)

// Plan is the price plan master (料金プランマスタ), fixed (定額) or metered
// (従量): the set of fees a service contract is charged.
type Plan struct {
	Code     string        `json:"code"`
	Name     string        `json:"name"`
	Versions []PlanVersion `json:"versions"`
}

// PlanVersion is one effective-dated version of a plan.
type PlanVersion struct {
	Validity
	Type     PlanType `json:"type"`     // fixed or metered
	Currency string   `json:"currency"` // ISO 4217; must match the basic contract's
	Fees     []string `json:"fees"`     // fee codes charged under this plan
	// RoundingPoint says where amounts are rounded to the currency's minor
	// unit: each line ("line") or the running period total of each fee
	// ("period", the default: a customer's lines always sum to the rounded
	// period amount).
	RoundingPoint RoundingPoint `json:"rounding_point,omitempty"`
	// Precision is the decimal places of the lines with the receivable
	// rounding point (at least the currency's, at most MaxDecimalPlaces;
	// default MaxDecimalPlaces): a per-GiB price of 0.0001 USD is billed as
	// its document states, and the receivable rounds the sum.
	Precision *int32 `json:"precision,omitempty"`
	// UnmatchedRates says what a record matching no rates entry of one of
	// the plan's fees on its element does: "unrated" (the default, as
	// before: the whole record is not priced, no_rate) or "skip" (that fee
	// does not apply to the record, which is priced under the plan's other
	// fees: fees restricted by attribute, e.g. one fee for region jp and one
	// for region us on one element; no_rate only when no fee applies).
	UnmatchedRates UnmatchedRates `json:"unmatched_rates,omitempty"`
	// MinimumWithoutUsage charges each metered fee's minimum also for a
	// billing period in which the fee had no record (a separate line, like
	// Lago's true-up fee); by default a fee minimum applies only once the
	// period has usage.
	MinimumWithoutUsage bool `json:"minimum_without_usage,omitempty"`
	// Commitment is a minimum spend per billing period across the plan's
	// fees (fixed and metered, before discounts), billed as a true-up line
	// of its own: commitment − what the period's lines charged, never
	// negative; pro-rated by days when the contract covers part of the
	// period.
	Commitment *decimal.Decimal `json:"commitment,omitempty"`
	// RatingGroup is Zuora's usage rating by group: the records of a
	// billing period are rated in groups, each group's quantity priced on
	// its own (its tiers, minimums and maximums) and the period charged the
	// sum: billing_period (the default: one group), usage_start_date (the
	// records of one civil day), usage_record (each record alone) or upload
	// (the records of one import: schemas.UsageEvent.Import; records sent
	// to the API are one group). As in Zuora it applies to per_unit,
	// graduated and volume rates; the other models rate by billing period.
	RatingGroup RatingGroup `json:"rating_group,omitempty"`
}

// RatingGroup is how a plan's metered records are grouped for rating.
type RatingGroup string

// Rating groups.
const (
	GroupBillingPeriod  RatingGroup = "billing_period"
	GroupUsageStartDate RatingGroup = "usage_start_date"
	GroupUsageRecord    RatingGroup = "usage_record"
	GroupUpload         RatingGroup = "upload"
)

// UnmatchedRates is what a fee none of whose rates entries matches a record
// does to the record.
type UnmatchedRates string

// Unmatched-rates policies.
const (
	UnmatchedUnrated UnmatchedRates = "unrated"
	UnmatchedSkip    UnmatchedRates = "skip"
)

// PlanType is fixed (定額) or metered (従量).
type PlanType string

// Plan types.
const (
	PlanFixed   PlanType = "fixed"
	PlanMetered PlanType = "metered"
)

// RoundingPoint is where amounts are rounded.
type RoundingPoint string

// Rounding points.
const (
	RoundPeriod RoundingPoint = "period"
	RoundLine   RoundingPoint = "line"
	// RoundReceivable keeps the lines at the plan's precision (finer than
	// the currency's minor unit; each line is round(after) − round(before)
	// at that precision, like period); the receivable (invoice) rounds the
	// customer's period total to the currency.
	RoundReceivable RoundingPoint = "receivable"
)

// Fee is the fee master (料金マスタ): one charge item of a plan, e.g. the
// base amount or the additional metered amount.
type Fee struct {
	Code     string       `json:"code"`
	Name     string       `json:"name"`
	Versions []FeeVersion `json:"versions"`
}

// FeeVersion is one effective-dated version of a fee. Kind selects which of
// the remaining fields apply.
type FeeVersion struct {
	Validity
	Kind FeeKind `json:"kind"` // fixed or metered

	// Fixed fees.
	Amount     *decimal.Decimal `json:"amount,omitempty"`
	Recurrence Recurrence       `json:"recurrence,omitempty"` // monthly, yearly, one_time
	Proration  Proration        `json:"proration,omitempty"`  // none, actual_days, thirty_day
	Timing     Timing           `json:"timing,omitempty"`     // advance or arrears

	// Metered fees.
	Element string `json:"element,omitempty"` // calculation element code
	// Rates chooses the rate table by event attributes: the entry whose
	// Match has the most keys, all equal to the event's attributes, wins; an
	// entry with an empty Match is the default.
	Rates []RateChoice `json:"rates,omitempty"`
	// SplitBy charges the fee separately per value of these attributes (one
	// running quantity and one line item per combination); at most
	// MaxSplitBy attributes.
	SplitBy []string         `json:"split_by,omitempty"`
	Minimum *decimal.Decimal `json:"minimum,omitempty"` // per period, once there is usage
	Maximum *decimal.Decimal `json:"maximum,omitempty"` // per period cap

	// Consumption tax (消費税) of the fee's charges, fixed and metered: the
	// category (empty means standard) and whether the fee's prices include
	// the tax. Receivables (package billing) compute the tax once per rate.
	TaxCategory  TaxCategory `json:"tax_category,omitempty"`
	TaxInclusive bool        `json:"tax_inclusive,omitempty"`
}

// TaxCategory is a fee's consumption-tax category.
type TaxCategory string

// Tax categories: standard rate (10 % since 2019-10-01), reduced rate (8 %),
// exempt (非課税) and out of scope (不課税).
const (
	TaxStandard   TaxCategory = "standard"
	TaxReduced    TaxCategory = "reduced"
	TaxExempt     TaxCategory = "exempt"
	TaxOutOfScope TaxCategory = "out_of_scope"
)

// ValidTaxCategory reports whether c is a tax category (empty is standard).
func ValidTaxCategory(c TaxCategory) bool {
	switch c {
	case "", TaxStandard, TaxReduced, TaxExempt, TaxOutOfScope:
		return true
	}
	return false
}

// MaxSplitBy bounds a fee's split_by attributes (the rater keeps the split
// values in a fixed-size key).
const MaxSplitBy = 4

// FeeKind is fixed or metered.
type FeeKind string

// Fee kinds.
const (
	FeeFixed   FeeKind = "fixed"
	FeeMetered FeeKind = "metered"
)

// Recurrence says how often a fixed fee is charged.
type Recurrence string

// Recurrences.
const (
	Monthly Recurrence = "monthly"
	Yearly  Recurrence = "yearly"
	OneTime Recurrence = "one_time"
	// Weekly charges once per week, weeks starting on the basic contract's
	// week_start (Monday by default); a week the contract covers in part is
	// pro-rated by whole days: covered days / 7 (actual_days).
	Weekly Recurrence = "weekly"
	// Daily charges the amount for each day the contract covers (a day is
	// never pro-rated).
	Daily Recurrence = "daily"
)

// Proration says how a fixed fee is reduced when a contract covers part of
// a period.
type Proration string

// Prorations.
const (
	ProrateNone       Proration = "none"
	ProrateActualDays Proration = "actual_days" // days covered / days in the period
	ProrateThirtyDay  Proration = "thirty_day"  // days covered (at most 30) / 30
)

// Timing says whether a fixed fee is charged at the start or end of a period.
type Timing string

// Timings.
const (
	Advance Timing = "advance"
	Arrears Timing = "arrears"
)

// RateChoice maps matching event attributes to a rate table.
type RateChoice struct {
	Match     map[string]string `json:"match,omitempty"`
	RateTable string            `json:"rate_table"`
	// Minimum and Maximum bound the period amount of a charge priced by this
	// entry (Zuora's charge-level min/max of a pricing entry), before the
	// fee's own minimum and maximum; the minimum applies once the period has
	// usage.
	Minimum *decimal.Decimal `json:"minimum,omitempty"`
	Maximum *decimal.Decimal `json:"maximum,omitempty"`
}

// Element is the calculation-element master (計算要素マスタ): a metered
// quantity, its unit, how records aggregate over a period and how the
// quantity is rounded.
type Element struct {
	Code     string           `json:"code"`
	Name     string           `json:"name"`
	Versions []ElementVersion `json:"versions"`
}

// ElementVersion is one effective-dated version of an element.
type ElementVersion struct {
	Validity
	Unit            string      `json:"unit"`
	Aggregation     Aggregation `json:"aggregation"`
	UniqueAttribute string      `json:"unique_attribute,omitempty"` // for unique_count
	// TimeUnit is the unit of a time_weighted quantity: "day" (level ×
	// days held: seat-days) or "period" (level × the fraction of the
	// billing period held: GB-months).
	TimeUnit string `json:"time_unit,omitempty"`
	// Rounding rounds quantities to a multiple of Increment (e.g. seconds up
	// to whole minutes: increment 60, mode up), per record or per period.
	Rounding *QuantityRounding `json:"rounding,omitempty"`
}

// Aggregation is how an element's records combine into a period quantity.
type Aggregation string

// Aggregations.
const (
	AggSum         Aggregation = "sum"
	AggMax         Aggregation = "max"
	AggCount       Aggregation = "count"
	AggUniqueCount Aggregation = "unique_count"
	AggLatest      Aggregation = "latest" // the quantity of the record with the latest time
	// AggTimeWeighted: each record sets a level from its time on (seats
	// provisioned, gigabytes stored); the period's quantity is level × time
	// in the element's time_unit, known only once the period has ended.
	AggTimeWeighted Aggregation = "time_weighted"
)

// QuantityRounding rounds a quantity to a multiple of Increment.
type QuantityRounding struct {
	Increment decimal.Decimal `json:"increment"`
	Mode      string          `json:"mode"`  // half_up, down or up
	Scope     string          `json:"scope"` // record or period
}

// RateTable is the rate-table master (料金表マスタ): the tariff that turns a
// period quantity into an amount.
type RateTable struct {
	Code     string             `json:"code"`
	Name     string             `json:"name"`
	Versions []RateTableVersion `json:"versions"`
}

// RateTableVersion is one effective-dated version of a rate table. Model
// selects which of the remaining fields apply.
type RateTableVersion struct {
	Validity
	Model      Model            `json:"model"`
	UnitPrice  *decimal.Decimal `json:"unit_price,omitempty"` // per_unit
	Tiers      []Tier           `json:"tiers,omitempty"`      // graduated, volume
	Package    *Package         `json:"package,omitempty"`
	Overage    *Overage         `json:"overage,omitempty"`
	Percentage *Percentage      `json:"percentage,omitempty"`
	Capacity   *Capacity        `json:"capacity,omitempty"`
	// TierBounds says which tier a quantity exactly on a bound belongs to
	// (graduated, volume): "up_to" (the default) makes every bound the
	// inclusive upper end of its tier (q = 50 stays in the tier up to 50);
	// "from" makes it the inclusive lower end of the next tier (q = 50 is in
	// the tier ">= 50"), with no workaround such as up_to 49.999999999.
	TierBounds TierBounds `json:"tier_bounds,omitempty"`
	// AboveLastTier prices the quantity beyond a closed last tier (one with
	// an up_to), like Zuora's tiered with overage model: graduated charges
	// the units beyond it at UnitPrice, volume all units. Without it, a
	// record that takes the period's quantity beyond a closed last tier is
	// unrated (above_last_tier).
	AboveLastTier *AboveLastTier `json:"above_last_tier,omitempty"`
}

// TierBounds is which side of a tier bound a quantity on it belongs to.
type TierBounds string

// Tier bounds.
const (
	BoundsUpTo TierBounds = "up_to" // bounds are inclusive upper ends (the default)
	BoundsFrom TierBounds = "from"  // bounds are inclusive lower ends (">= 50")
)

// AboveLastTier is the explicit overage rule beyond a closed last tier.
type AboveLastTier struct {
	UnitPrice decimal.Decimal `json:"unit_price"`
}

// Model is a pricing model.
type Model string

// Pricing models.
const (
	ModelPerUnit    Model = "per_unit"
	ModelGraduated  Model = "graduated"  // each tier's units at that tier's price
	ModelVolume     Model = "volume"     // all units at the price of the tier reached
	ModelPackage    Model = "package"    // a price per block of units
	ModelOverage    Model = "overage"    // included quantity, then per unit
	ModelPercentage Model = "percentage" // a share of each transaction's amount
	ModelCapacity   Model = "capacity"   // the price of the first tier whose limits all units' peaks fit
)

// Capacity is Kill Bill's capacity usage: the period is charged the price
// of the first tier whose limits every unit's peak fits (peak: the largest
// quantity of one record of that unit's element in the period). Units are
// element codes; the fee of a capacity rate table is priced by the records
// of every unit's element (its own element must be one of them), and each
// element's aggregation and quantity rounding do not apply (the peak of the
// records' quantities is taken as recorded). A tier without a limit for a
// unit does not bound that unit; peaks fitting no tier make the record that
// passes the last tier unrated (above_last_tier), the state unchanged.
type Capacity struct {
	Units []string       `json:"units"`
	Tiers []CapacityTier `json:"tiers"`
}

// CapacityTier is one tier of a capacity table: the largest peak of each
// unit (inclusive) it takes, and its price for the period.
type CapacityTier struct {
	Limits map[string]decimal.Decimal `json:"limits,omitempty"`
	Price  decimal.Decimal            `json:"price"`
}

// MaxCapacityUnits bounds the units of a capacity table (the running state
// keeps one peak per unit in a fixed-size array).
const MaxCapacityUnits = 4

// Tier is one step of a graduated or volume table. Tiers are ordered; each
// starts where the previous ended (the first at 0) and ends at UpTo
// (inclusive, or exclusive with tier_bounds "from"); the last tier has no
// UpTo, or has one (closed) and the version says what lies beyond it
// (AboveLastTier, else unrated). From is optional; when given it must equal
// the previous tier's UpTo (0 for the first), which catches gaps and
// overlaps in hand-written tables.
type Tier struct {
	From      *decimal.Decimal `json:"from,omitempty"`
	UpTo      *decimal.Decimal `json:"up_to,omitempty"`
	UnitPrice decimal.Decimal  `json:"unit_price"`
	FlatFee   decimal.Decimal  `json:"flat_fee"`
	// Minimum and Maximum bound the tier's amount (Zuora's tier-level
	// min/max): graduated, the amount of the tier's units plus its flat fee
	// once the quantity enters the tier; volume, the amount of the tier the
	// quantity reaches.
	Minimum *decimal.Decimal `json:"minimum,omitempty"`
	Maximum *decimal.Decimal `json:"maximum,omitempty"`
}

// Package prices whole blocks of Size units.
type Package struct {
	Size      decimal.Decimal `json:"size"`
	Price     decimal.Decimal `json:"price"`
	Rounding  string          `json:"rounding"` // up (a partial block costs a block) or down
	FreeUnits decimal.Decimal `json:"free_units"`
}

// Overage charges units above Included at UnitPrice.
type Overage struct {
	Included  decimal.Decimal `json:"included"`
	UnitPrice decimal.Decimal `json:"unit_price"`
}

// Percentage charges Rate of each transaction's amount (the record's
// quantity) plus FixedFee per transaction, bounded per transaction by
// MinPerTransaction and MaxPerTransaction. The free allowance follows Lago's
// percentage model: the first FreeTransactions transactions of a period pay
// no fixed fee, and the first FreeAmount of a period's transaction amount
// carries no percentage; when both are set the allowance ends as soon as
// either is used up ("the first 3 transactions or the first $500 are free").
// A transaction entirely covered by the allowance is not subject to the
// per-transaction minimum. Transactions are counted in arrival order.
type Percentage struct {
	Rate              decimal.Decimal  `json:"rate"` // 0.029 for 2.9 %
	FixedFee          decimal.Decimal  `json:"fixed_fee"`
	FreeTransactions  int64            `json:"free_transactions"`
	FreeAmount        decimal.Decimal  `json:"free_amount"`
	MinPerTransaction *decimal.Decimal `json:"min_per_transaction,omitempty"`
	MaxPerTransaction *decimal.Decimal `json:"max_per_transaction,omitempty"`
}

// DiscountTable is the discount-table master (割引表マスタ).
type DiscountTable struct {
	Code     string                 `json:"code"`
	Name     string                 `json:"name"`
	Versions []DiscountTableVersion `json:"versions"`
}

// DiscountTableVersion is one effective-dated version of a discount table.
// The discount is Value percent (kind percentage) or Value currency units
// (kind fixed) of the tier reached by the discounted quantity or amount.
type DiscountTableVersion struct {
	Validity
	Kind   DiscountKind   `json:"kind"`  // percentage or fixed
	Basis  DiscountBasis  `json:"basis"` // quantity or amount
	Tiers  []DiscountTier `json:"tiers"`
	Credit bool           `json:"credit,omitempty"` // may take the amount below zero
}

// DiscountKind is a percentage or a fixed amount.
type DiscountKind string

// Discount kinds.
const (
	DiscountPercentage DiscountKind = "percentage"
	DiscountFixed      DiscountKind = "fixed"
)

// DiscountBasis is what selects the discount tier.
type DiscountBasis string

// Discount bases.
const (
	BasisQuantity DiscountBasis = "quantity"
	BasisAmount   DiscountBasis = "amount"
)

// DiscountTier applies Value from From (inclusive) up to the next tier.
type DiscountTier struct {
	From  decimal.Decimal `json:"from"`
	Value decimal.Decimal `json:"value"`
}

func checkHeader(code, name string, nVersions int, errs *Errors) {
	if !schemas.ValidCode(code) {
		errs.Add("code", "must be 1-64 characters of letters, digits and _-.:")
	}
	if len(name) > 256 {
		errs.Add("name", "must be at most 256 characters")
	}
	if nVersions == 0 {
		errs.Add("versions", "at least one version is required")
	}
}

func checkVersions[V any](versions []V, validity func(*V) Validity, each func(string, *V), errs *Errors) {
	vs := make([]Validity, len(versions))
	for i := range versions {
		field := fmt.Sprintf("versions[%d]", i)
		vs[i] = validity(&versions[i])
		vs[i].check(field, errs)
		each(field, &versions[i])
	}
	checkNoOverlap("versions", vs, errs)
}

// MaxDecimalPlaces bounds the decimals of every amount, price, rate and
// quantity in the masters: the scale of usage quantities and of the usage
// store (Decimal(38, 9)), and what the rater's exact fixed-point arithmetic
// carries. A price of 0.0000000001 would otherwise be silently truncated
// somewhere downstream.
const MaxDecimalPlaces = 9

func nonNegative(field string, d decimal.Decimal, errs *Errors) {
	if d.IsNegative() {
		errs.Add(field, "must not be negative")
	}
	checkPlaces(field, d, errs)
}

// checkPlaces reports a number with more than MaxDecimalPlaces decimals.
func checkPlaces(field string, d decimal.Decimal, errs *Errors) {
	if !d.Equal(d.Truncate(MaxDecimalPlaces)) {
		errs.Add(field, fmt.Sprintf("must have at most %d decimal places", MaxDecimalPlaces))
	}
}

// Bounds of the numbers in the masters, so that every line priced with them
// fits the store. Rated lines are kept in Decimal(38, 9) columns
// (rated_usage.quantity, unit_price, amount): at most 9 decimal places and
// |x| < 10^29; the aggregator keeps a digit of headroom and refuses
// |x| ≥ 10^28 (schemas.MaxStoredDecimal) rather than let ClickHouse truncate
// or wrap it. Ingest accepts one record's quantity q < 10^18 with 9 decimal
// places (ingest.parseQuantity). Hence:
//
//   - MaxUnitPrice (10^10, exclusive) bounds every price per unit of
//     quantity — the unit price of any model, a package's price per unit of
//     its size, the percentage model's rate: price × q < 10^10 × 10^18 =
//     10^28 for every quantity ingest accepts.
//   - MaxAmount (10^18, exclusive) bounds amounts charged as such — fixed
//     fee amounts, tier flat fees, a fee's minimum and maximum, the
//     percentage model's fixed fee and per-transaction bounds, fixed
//     discounts: a fixed fee times the contract quantity (at most
//     MaxContractQuantity = 10^9) and a pro-ration factor of at most 1 stays
//     below 10^27, and the few such amounts a line can add to a price × q
//     leave it well inside the column.
//   - MaxMasterQuantity (10^28, exclusive) bounds quantities in the masters —
//     tier bounds, included and free units, package sizes, rounding
//     increments, discount thresholds: they are compared with running
//     quantities and amounts, which the store holds below 10^28.
//
// A period's running total may still outgrow what one line can hold (many
// records at a high price); the rater parks such a record as unrated
// (amount_overflow) instead of emitting a line the store cannot take.
var (
	MaxUnitPrice      = decimal.New(1, 10)
	MaxAmount         = decimal.New(1, 18)
	MaxMasterQuantity = decimal.New(1, 28)
)

// MaxContractQuantity bounds a service contract's quantity (the multiplier
// of its fixed fees), so that MaxAmount × quantity stays inside the store.
const MaxContractQuantity = 1_000_000_000

// unitPrice checks a price per unit of quantity.
func unitPrice(field string, d decimal.Decimal, errs *Errors) {
	nonNegative(field, d, errs)
	if d.GreaterThanOrEqual(MaxUnitPrice) {
		errs.Add(field, "must be less than 10^10: a price per unit times a record's quantity (below 10^18) must fit the stored amounts (below 10^28)")
	}
}

// amount checks an amount charged as such.
func amount(field string, d decimal.Decimal, errs *Errors) {
	nonNegative(field, d, errs)
	if d.GreaterThanOrEqual(MaxAmount) {
		errs.Add(field, "must be less than 10^18, so that lines charging it (times a contract quantity of at most 10^9) fit the stored amounts (below 10^28)")
	}
}

func amountPtr(field string, d *decimal.Decimal, errs *Errors) {
	if d != nil {
		amount(field, *d, errs)
	}
}

// masterQuantity checks a quantity (or threshold) of a master.
func masterQuantity(field string, d decimal.Decimal, errs *Errors) {
	nonNegative(field, d, errs)
	if d.GreaterThanOrEqual(MaxMasterQuantity) {
		errs.Add(field, "must be less than 10^28, the largest quantity or amount the store holds")
	}
}

// Validate checks the service on its own (references are checked by
// Catalogue.Validate).
func (s *Service) Validate() error {
	var errs Errors
	checkHeader(s.Code, s.Name, len(s.Versions), &errs)
	checkVersions(s.Versions, func(v *ServiceVersion) Validity { return v.Validity }, func(f string, v *ServiceVersion) {
		switch v.Kind {
		case KindService, "":
		case KindOption:
			if v.Parent == "" {
				errs.Add(f+".parent", "an option needs a parent service")
			}
		default:
			errs.Add(f+".kind", "must be service or option")
		}
		if v.Parent == s.Code {
			errs.Add(f+".parent", "a service cannot be its own parent")
		}
	}, &errs)
	return errs.Err()
}

// Validate checks the plan on its own.
func (p *Plan) Validate() error {
	var errs Errors
	checkHeader(p.Code, p.Name, len(p.Versions), &errs)
	checkVersions(p.Versions, func(v *PlanVersion) Validity { return v.Validity }, func(f string, v *PlanVersion) {
		if v.Type != PlanFixed && v.Type != PlanMetered {
			errs.Add(f+".type", "must be fixed or metered")
		}
		if _, ok := currencyPlaces(v.Currency); !ok {
			errs.Add(f+".currency", fmt.Sprintf("unknown currency %q", v.Currency))
		}
		if len(v.Fees) == 0 {
			errs.Add(f+".fees", "at least one fee is required")
		}
		seen := map[string]bool{}
		for i, fee := range v.Fees {
			if seen[fee] {
				errs.Add(fmt.Sprintf("%s.fees[%d]", f, i), "fee listed twice")
			}
			seen[fee] = true
		}
		switch v.RoundingPoint {
		case "", RoundPeriod, RoundLine, RoundReceivable:
		default:
			errs.Add(f+".rounding_point", "must be period, line or receivable")
		}
		if v.Precision != nil {
			places, ok := currencyPlaces(v.Currency)
			switch {
			case v.RoundingPoint != RoundReceivable:
				errs.Add(f+".precision", "applies only to rounding_point receivable (line and period round to the currency)")
			case ok && (*v.Precision < places || *v.Precision > MaxDecimalPlaces):
				errs.Add(f+".precision", fmt.Sprintf("must be between the currency's %d decimal places and %d", places, MaxDecimalPlaces))
			}
		}
		amountPtr(f+".commitment", v.Commitment, &errs)
		switch v.UnmatchedRates {
		case "", UnmatchedUnrated, UnmatchedSkip:
		default:
			errs.Add(f+".unmatched_rates", "must be unrated or skip")
		}
		switch v.RatingGroup {
		case "", GroupBillingPeriod, GroupUsageStartDate, GroupUsageRecord, GroupUpload:
		default:
			errs.Add(f+".rating_group", "must be billing_period, usage_start_date, usage_record or upload")
		}
	}, &errs)
	return errs.Err()
}

// Validate checks the fee on its own.
func (fe *Fee) Validate() error {
	var errs Errors
	checkHeader(fe.Code, fe.Name, len(fe.Versions), &errs)
	checkVersions(fe.Versions, func(v *FeeVersion) Validity { return v.Validity }, func(f string, v *FeeVersion) {
		if !ValidTaxCategory(v.TaxCategory) {
			errs.Add(f+".tax_category", "must be standard, reduced, exempt or out_of_scope")
		}
		switch v.Kind {
		case FeeFixed:
			if v.Amount == nil {
				errs.Add(f+".amount", "a fixed fee needs an amount")
			}
			amountPtr(f+".amount", v.Amount, &errs)
			switch v.Recurrence {
			case Monthly, Yearly, OneTime, Weekly, Daily:
			default:
				errs.Add(f+".recurrence", "must be monthly, yearly, weekly, daily or one_time")
			}
			switch v.Proration {
			case "", ProrateNone, ProrateActualDays:
			case ProrateThirtyDay:
				if v.Recurrence == Weekly || v.Recurrence == Daily {
					errs.Add(f+".proration", "thirty_day applies to monthly and yearly fees (a week is pro-rated by days / 7: actual_days)")
				}
			default:
				errs.Add(f+".proration", "must be none, actual_days or thirty_day")
			}
			switch v.Timing {
			case "", Advance, Arrears:
			default:
				errs.Add(f+".timing", "must be advance or arrears")
			}
			if v.Element != "" || len(v.Rates) > 0 {
				errs.Add(f+".element", "a fixed fee has no element or rates")
			}
		case FeeMetered:
			if !schemas.ValidCode(v.Element) {
				errs.Add(f+".element", "a metered fee needs an element code")
			}
			if len(v.Rates) == 0 {
				errs.Add(f+".rates", "a metered fee needs at least one rate table")
			}
			seen := map[string]int{}
			for i, r := range v.Rates {
				if !schemas.ValidCode(r.RateTable) {
					errs.Add(fmt.Sprintf("%s.rates[%d].rate_table", f, i), "is required")
				}
				rf := fmt.Sprintf("%s.rates[%d]", f, i)
				amountPtr(rf+".minimum", r.Minimum, &errs)
				amountPtr(rf+".maximum", r.Maximum, &errs)
				if r.Minimum != nil && r.Maximum != nil && r.Minimum.GreaterThan(*r.Maximum) {
					errs.Add(rf+".minimum", "must not exceed maximum")
				}
				key := matchKey(r.Match)
				if j, dup := seen[key]; dup {
					errs.Add(fmt.Sprintf("%s.rates[%d].match", f, i), fmt.Sprintf("same match as rates[%d]", j))
				}
				seen[key] = i
			}
			if len(v.SplitBy) > MaxSplitBy {
				errs.Add(f+".split_by", fmt.Sprintf("at most %d attributes", MaxSplitBy))
			}
			splits := map[string]bool{}
			for i, a := range v.SplitBy {
				if a == "" || len(a) > 64 || splits[a] {
					errs.Add(fmt.Sprintf("%s.split_by[%d]", f, i), "must be a distinct attribute name of 1-64 characters")
				}
				splits[a] = true
			}
			amountPtr(f+".minimum", v.Minimum, &errs)
			amountPtr(f+".maximum", v.Maximum, &errs)
			if v.Minimum != nil && v.Maximum != nil && v.Minimum.GreaterThan(*v.Maximum) {
				errs.Add(f+".minimum", "must not exceed maximum")
			}
			if v.Amount != nil {
				errs.Add(f+".amount", "a metered fee has no fixed amount")
			}
		default:
			errs.Add(f+".kind", "must be fixed or metered")
		}
	}, &errs)
	return errs.Err()
}

// matchKey renders a match canonically, for spotting two identical matches.
func matchKey(m map[string]string) string {
	return canonicalAttrs(m)
}

// Validate checks the element on its own.
func (e *Element) Validate() error {
	var errs Errors
	checkHeader(e.Code, e.Name, len(e.Versions), &errs)
	checkVersions(e.Versions, func(v *ElementVersion) Validity { return v.Validity }, func(f string, v *ElementVersion) {
		switch v.Aggregation {
		case AggSum, AggMax, AggCount, AggLatest:
		case AggUniqueCount:
			if v.UniqueAttribute == "" {
				errs.Add(f+".unique_attribute", "unique_count needs the attribute whose distinct values are counted")
			}
		case AggTimeWeighted:
			if v.TimeUnit != "day" && v.TimeUnit != "period" {
				errs.Add(f+".time_unit", "time_weighted needs time_unit day (level × days: seat-days) or period (level × fraction of the period: GB-months)")
			}
		default:
			errs.Add(f+".aggregation", "must be sum, max, count, unique_count, latest or time_weighted")
		}
		if v.TimeUnit != "" && v.Aggregation != AggTimeWeighted {
			errs.Add(f+".time_unit", "applies only to aggregation time_weighted")
		}
		if r := v.Rounding; r != nil {
			if !r.Increment.IsPositive() {
				errs.Add(f+".rounding.increment", "must be positive")
			}
			checkPlaces(f+".rounding.increment", r.Increment, &errs)
			if r.Increment.GreaterThanOrEqual(MaxMasterQuantity) {
				errs.Add(f+".rounding.increment", "must be less than 10^28, the largest quantity the store holds")
			}
			switch r.Mode {
			case "half_up", "down", "up":
			default:
				errs.Add(f+".rounding.mode", "must be half_up, down or up")
			}
			switch r.Scope {
			case "record", "period":
			default:
				errs.Add(f+".rounding.scope", "must be record or period")
			}
		}
	}, &errs)
	return errs.Err()
}

// Validate checks the rate table on its own.
func (r *RateTable) Validate() error {
	var errs Errors
	checkHeader(r.Code, r.Name, len(r.Versions), &errs)
	checkVersions(r.Versions, func(v *RateTableVersion) Validity { return v.Validity }, func(f string, v *RateTableVersion) {
		v.check(f, &errs)
	}, &errs)
	return errs.Err()
}

func (v *RateTableVersion) check(f string, errs *Errors) {
	switch v.Model {
	case ModelPerUnit:
		if v.UnitPrice == nil {
			errs.Add(f+".unit_price", "per_unit needs a unit_price")
		}
		if v.UnitPrice != nil {
			unitPrice(f+".unit_price", *v.UnitPrice, errs)
		}
	case ModelGraduated, ModelVolume:
		checkTiers(f+".tiers", v.Tiers, errs)
		switch v.TierBounds {
		case "", BoundsUpTo, BoundsFrom:
		default:
			errs.Add(f+".tier_bounds", "must be up_to or from")
		}
		if a := v.AboveLastTier; a != nil {
			unitPrice(f+".above_last_tier.unit_price", a.UnitPrice, errs)
			if n := len(v.Tiers); n > 0 && v.Tiers[n-1].UpTo == nil {
				errs.Add(f+".above_last_tier", "needs a closed last tier (one with up_to): an open last tier already prices every quantity")
			}
		}
	case ModelPackage:
		p := v.Package
		if p == nil {
			errs.Add(f+".package", "package needs size and price")
			return
		}
		if !p.Size.IsPositive() {
			errs.Add(f+".package.size", "must be positive")
		}
		checkPlaces(f+".package.size", p.Size, errs)
		if p.Size.GreaterThanOrEqual(MaxMasterQuantity) {
			errs.Add(f+".package.size", "must be less than 10^28, the largest quantity the store holds")
		}
		amount(f+".package.price", p.Price, errs)
		if p.Size.IsPositive() && p.Price.GreaterThanOrEqual(MaxUnitPrice.Mul(p.Size)) {
			errs.Add(f+".package.price", "the price per unit (price / size) must be less than 10^10: a price per unit times a record's quantity (below 10^18) must fit the stored amounts (below 10^28)")
		}
		masterQuantity(f+".package.free_units", p.FreeUnits, errs)
		if p.Rounding != "up" && p.Rounding != "down" {
			errs.Add(f+".package.rounding", "must be up or down")
		}
	case ModelOverage:
		o := v.Overage
		if o == nil {
			errs.Add(f+".overage", "overage needs included and unit_price")
			return
		}
		masterQuantity(f+".overage.included", o.Included, errs)
		unitPrice(f+".overage.unit_price", o.UnitPrice, errs)
	case ModelPercentage:
		p := v.Percentage
		if p == nil {
			errs.Add(f+".percentage", "percentage needs a rate")
			return
		}
		unitPrice(f+".percentage.rate", p.Rate, errs)
		amount(f+".percentage.fixed_fee", p.FixedFee, errs)
		masterQuantity(f+".percentage.free_amount", p.FreeAmount, errs)
		if p.FreeTransactions < 0 {
			errs.Add(f+".percentage.free_transactions", "must not be negative")
		}
		amountPtr(f+".percentage.min_per_transaction", p.MinPerTransaction, errs)
		amountPtr(f+".percentage.max_per_transaction", p.MaxPerTransaction, errs)
		if p.MinPerTransaction != nil && p.MaxPerTransaction != nil && p.MinPerTransaction.GreaterThan(*p.MaxPerTransaction) {
			errs.Add(f+".percentage.min_per_transaction", "must not exceed max_per_transaction")
		}
	case ModelCapacity:
		checkCapacity(f+".capacity", v.Capacity, errs)
	default:
		errs.Add(f+".model", "must be per_unit, graduated, volume, package, overage, percentage or capacity")
	}
}

// checkCapacity checks a capacity table: 1 to MaxCapacityUnits distinct
// units, at least one tier, limits only for its units.
func checkCapacity(f string, c *Capacity, errs *Errors) {
	if c == nil {
		errs.Add(f, "capacity needs units and tiers")
		return
	}
	if len(c.Units) == 0 || len(c.Units) > MaxCapacityUnits {
		errs.Add(f+".units", fmt.Sprintf("must name 1 to %d elements", MaxCapacityUnits))
	}
	units := map[string]bool{}
	for i, u := range c.Units {
		if !schemas.ValidCode(u) || units[u] {
			errs.Add(fmt.Sprintf("%s.units[%d]", f, i), "must be a distinct element code")
		}
		units[u] = true
	}
	if len(c.Tiers) == 0 {
		errs.Add(f+".tiers", "at least one tier is required")
	}
	for i, t := range c.Tiers {
		tf := fmt.Sprintf("%s.tiers[%d]", f, i)
		for _, u := range sortedKeys(t.Limits) {
			if !units[u] {
				errs.Add(tf+".limits."+u, "is not one of the table's units")
			}
			masterQuantity(tf+".limits."+u, t.Limits[u], errs)
		}
		amount(tf+".price", t.Price, errs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkTiers requires ascending, gap-free tiers. Gaps cannot occur by
// construction (each tier starts where the previous one ends), so the checks
// are: every bound above the previous one, only the last tier open (a closed
// last tier is allowed: what lies beyond it is the version's
// above_last_tier, else unrated), prices not negative.
func checkTiers(field string, tiers []Tier, errs *Errors) {
	if len(tiers) == 0 {
		errs.Add(field, "at least one tier is required")
		return
	}
	prev := decimal.Zero
	for i, t := range tiers {
		f := fmt.Sprintf("%s[%d]", field, i)
		last := i == len(tiers)-1
		switch {
		case t.UpTo == nil && !last:
			errs.Add(f+".up_to", "only the last tier may be open-ended")
		case t.UpTo != nil && !t.UpTo.GreaterThan(prev):
			errs.Add(f+".up_to", fmt.Sprintf("must be greater than the previous bound %s (tiers overlap)", prev))
		}
		if t.From != nil && !t.From.Equal(prev) {
			what := "gap"
			if t.From.LessThan(prev) {
				what = "overlap"
			}
			errs.Add(f+".from", fmt.Sprintf("must be %s, where the previous tier ends (%s between tiers)", prev, what))
		}
		if t.UpTo != nil {
			checkPlaces(f+".up_to", *t.UpTo, errs)
			if t.UpTo.GreaterThanOrEqual(MaxMasterQuantity) {
				errs.Add(f+".up_to", "must be less than 10^28, the largest quantity the store holds")
			}
			prev = *t.UpTo
		}
		unitPrice(f+".unit_price", t.UnitPrice, errs)
		amount(f+".flat_fee", t.FlatFee, errs)
		amountPtr(f+".minimum", t.Minimum, errs)
		amountPtr(f+".maximum", t.Maximum, errs)
		if t.Minimum != nil && t.Maximum != nil && t.Minimum.GreaterThan(*t.Maximum) {
			errs.Add(f+".minimum", "must not exceed maximum")
		}
	}
}

// Validate checks the discount table on its own.
func (d *DiscountTable) Validate() error {
	var errs Errors
	checkHeader(d.Code, d.Name, len(d.Versions), &errs)
	checkVersions(d.Versions, func(v *DiscountTableVersion) Validity { return v.Validity }, func(f string, v *DiscountTableVersion) {
		if v.Kind != DiscountPercentage && v.Kind != DiscountFixed {
			errs.Add(f+".kind", "must be percentage or fixed")
		}
		if v.Basis != BasisQuantity && v.Basis != BasisAmount {
			errs.Add(f+".basis", "must be quantity or amount")
		}
		if len(v.Tiers) == 0 {
			errs.Add(f+".tiers", "at least one tier is required")
		}
		for i, t := range v.Tiers {
			tf := fmt.Sprintf("%s.tiers[%d]", f, i)
			masterQuantity(tf+".from", t.From, &errs)
			if v.Kind == DiscountFixed {
				amount(tf+".value", t.Value, &errs)
			} else {
				nonNegative(tf+".value", t.Value, &errs)
			}
			if i == 0 && !t.From.IsZero() {
				errs.Add(tf+".from", "the first tier must start at 0")
			}
			if i > 0 && !t.From.GreaterThan(v.Tiers[i-1].From) {
				errs.Add(tf+".from", "must be greater than the previous tier's from (tiers overlap)")
			}
			if v.Kind == DiscountPercentage && t.Value.GreaterThan(decimal.NewFromInt(100)) {
				errs.Add(tf+".value", "a percentage must be at most 100")
			}
		}
	}, &errs)
	return errs.Err()
}
