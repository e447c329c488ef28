package schemas

import (
	"time"

	"github.com/shopspring/decimal"
)

// UsageEvent is one metered usage record as accepted by ingest. It travels on
// usage.raw and usage.accepted, and is embedded in every downstream record.
type UsageEvent struct {
	Tenant     string            `json:"tenant"`
	ID         string            `json:"id"` // idempotency key, unique per tenant
	Customer   string            `json:"customer"`
	Element    string            `json:"element"` // calculation element (計算要素) code
	Quantity   decimal.Decimal   `json:"quantity"`
	Time       time.Time         `json:"time"` // when the usage happened
	Contract   string            `json:"contract,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	ReceivedAt time.Time         `json:"received_at"` // ingest time; also the Kafka record time
	// Import names the upload a record came from, when an import job
	// published it (ingest/imports); nil for records sent to the API. It is
	// ingest metadata like ReceivedAt: not part of PayloadHash, so the same
	// record uploaded again in another file is a duplicate that repeats the
	// first, not one that contradicts it.
	Import *ImportSource `json:"import,omitempty"`
}

// ImportSource is the upload an imported usage record came from: the name of
// the uploaded file as the client gave it and the id of the import job that
// published the record. Finance finds every record of one upload by them.
type ImportSource struct {
	File string `json:"file"`
	Job  string `json:"job"`
}

// PartitionKey is the Kafka key for records about this event: all of one
// customer's records land on one partition, in order.
func (e *UsageEvent) PartitionKey() []byte {
	return []byte(e.Tenant + "/" + e.Customer)
}

// Claim identifies the record that first claimed an event id: its position in
// usage.raw, a fingerprint of its payload and when it was received.
type Claim struct {
	Partition   int       `json:"partition"`
	Offset      int64     `json:"offset"`
	PayloadHash uint64    `json:"payload_hash"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Duplicate is a usage record whose (tenant, id) was already claimed by an
// earlier record. It travels on usage.duplicates and is never rated.
type Duplicate struct {
	Event          UsageEvent `json:"event"`
	Self           Claim      `json:"self"`  // this record's own position in usage.raw
	First          Claim      `json:"first"` // the record that claimed the id first
	PayloadDiffers bool       `json:"payload_differs"`
	DetectedAt     time.Time  `json:"detected_at"`
}

// RatedLine is one priced charge line derived from a usage event.
type RatedLine struct {
	LineID string     `json:"line_id"`
	Event  UsageEvent `json:"event"`
	Item   string     `json:"item"` // the charge item priced (for now the element)
	// UnitPrice is the price per unit the line was priced at, when UnitPriced:
	// a price list's price, or a per_unit rate table's (before discounts).
	// Other rates (graduated, volume, package, overage, percentage) and fixed
	// fees have no single price per unit: UnitPriced is false and UnitPrice
	// is 0 and means nothing. Raters before UnitPriced existed never set it.
	UnitPrice  decimal.Decimal `json:"unit_price"`
	UnitPriced bool            `json:"unit_priced,omitempty"`
	Amount     decimal.Decimal `json:"amount"` // rounded to the currency's minor unit
	Currency   string          `json:"currency"`
	Period     string          `json:"period"` // billing period YYYY-MM in the tenant's time zone
	RatedAt    time.Time       `json:"rated_at"`
	// Record is set on the first line the rater derives from a usage
	// record: the line then also carries the record for usage_records
	// (Event, with Record.Contract as the record named it).
	Record *RecordOrigin `json:"record,omitempty"`
}

// RecordOrigin marks the rater's output that carries an accepted usage record
// to the aggregator, so that the aggregator stores the record
// (usage_records) from the same message as its outcome and reads one message
// per record instead of usage.accepted as well. Partition and Offset are the
// record's position in usage.accepted (a re-rate replays a customer's records
// in that order, usagedb.Records.History); Contract is the contract the
// record named as received, since a rated line's Event names the contract it
// was priced under. The rater sets it on the first rated line of each usage
// record, or on its Unrated record when it parks it; corrections, re-rates and
// fixed fees carry none.
type RecordOrigin struct {
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Contract  string `json:"contract,omitempty"`
}

// Record returns the accepted record an output carrying o stands for: ev
// with the contract the record named.
func (o *RecordOrigin) Record(ev *UsageEvent) UsageEvent {
	r := *ev
	r.Contract = o.Contract
	return r
}

// Reason codes for records that could not be rated.
const (
	ReasonUnknownCustomer = "unknown_customer"
	ReasonUnknownElement  = "unknown_element"
	ReasonUnknownTenant   = "unknown_tenant"
	ReasonMalformed       = "malformed_record"
)

// Reason codes of the pricing engine (rater/pricing) for records it cannot
// price against the tenant's catalogue and contracts.
const (
	ReasonNoContract         = "no_contract"         // no service contract of the customer on the event's day
	ReasonAmbiguousContract  = "ambiguous_contract"  // several contracts meter the element; the record names none
	ReasonNoPlan             = "no_plan"             // the contract has no price plan (or plan version) then
	ReasonNoRate             = "no_rate"             // no fee/element/rate-table version, or no rates entry matches
	ReasonAmbiguousRate      = "ambiguous_rate"      // two equally specific rates entries match the attributes
	ReasonMissingAttribute   = "missing_attribute"   // the element counts distinct values of an attribute the record lacks
	ReasonAggregationChanged = "aggregation_changed" // the element's aggregation changed inside a running period
	ReasonOverflow           = "amount_overflow"     // a quantity or amount outside the exact range (Decimal(38,9))
	ReasonAboveLastTier      = "above_last_tier"     // the period's quantity passes a closed last tier with no overage price
)

// Unrated is a record the pipeline could not price, kept with its reason so it
// can be inspected and re-rated. Raw holds the undecodable bytes for
// ReasonMalformed, when Event could not be read at all.
type Unrated struct {
	Event      UsageEvent `json:"event"`
	ReasonCode string     `json:"reason_code"`
	Reason     string     `json:"reason"`
	Stage      string     `json:"stage"`
	Raw        string     `json:"raw,omitempty"`
	At         time.Time  `json:"at"`
	// Record is set when the rater parks a usage record: the message then
	// also carries the record for usage_records (RatedLine.Record).
	Record *RecordOrigin `json:"record,omitempty"`
}
