// Package reports builds asynchronous usage reports (spec 003): per partner
// (the tenant, or a customer group standing for a sub-partner), per customer
// or per user, for a period of civil days, with quantities that are sums of
// day fractions (a service held a whole day counts 1, half a day 0.5).
//
// A report is a job of kind "usage_report" on internal/jobs. Its run first
// computes the period's days from usage_records FINAL (valid records only;
// each record sets its subscriber's level until the next record of the same
// subscriber, customer, contract and element) into usage_daily, then reads
// the report's rows from usage_daily FINAL, grouped to the report's level,
// and writes them to a file (CSV, or Parquet) under the report directory.
// Both phases are idempotent (deterministic keys, ReplacingMergeTree, a file
// written to a temporary name and renamed), so a run killed anywhere restarts
// its phase cleanly. Downloads are temporary URLs signed with a server key
// (Signer); a deleted report's URL stops working at once because every
// download reads report_deletions.
package reports

import (
	"fmt"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/shopspring/decimal"
)

// Kind is the job kind of a usage report.
const Kind = "usage_report"

// Type is a report's level.
type Type string

// The report levels of spec 003.
const (
	TypePartner  Type = "partner"
	TypeCustomer Type = "customer"
	TypeUser     Type = "user"
)

// Types lists the report types.
var Types = []Type{TypePartner, TypeCustomer, TypeUser}

// Valid reports whether t is a report type.
func (t Type) Valid() bool { return t == TypePartner || t == TypeCustomer || t == TypeUser }

// Format is a report file's format.
type Format string

// The file formats: CSV (default) and Parquet.
const (
	FormatCSV     Format = "csv"
	FormatParquet Format = "parquet"
)

// Ext is the file name extension of the format.
func (f Format) Ext() string { return string(f) }

// ContentType is the media type of the format.
func (f Format) ContentType() string {
	if f == FormatParquet {
		return "application/vnd.apache.parquet"
	}
	return "text/csv; charset=utf-8"
}

// The attributes of a usage record a report reads: the subscriber whose state
// a record sets, and where the subscriber is.
const (
	AttrUser       = "user"
	AttrSubscriber = "subscriber" // the subscriber id; the user id when absent
	AttrWorkspace  = "workspace"
	AttrLocation   = "location"
	// AttrExternalID is the customer attribute holding the id the partner
	// gave the customer (customer_external_id).
	AttrExternalID = "external_id"
)

// MaxAgeYears is how far back a report may start (spec 003: any date of the
// past five years).
const MaxAgeYears = 5

// Params are a report's parameters, as POST /v1/reports takes them and the
// job keeps them.
type Params struct {
	Type     Type   `json:"type"`
	From     string `json:"from"`                // first day, YYYY-MM-DD
	To       string `json:"to"`                  // last day, inclusive
	Group    string `json:"group,omitempty"`     // a customer group: the sub-partner
	Format   Format `json:"format,omitempty"`    // csv (default) or parquet
	TimeZone string `json:"time_zone,omitempty"` // whose civil days; default UTC
}

// Normalize fills the defaults.
func (p *Params) Normalize() {
	if p.Format == "" {
		p.Format = FormatCSV
	}
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
	}
}

// Period returns the parsed days and zone; Validate must have passed.
func (p *Params) Period() (first, last catalog.Date, loc *time.Location, err error) {
	if first, err = catalog.ParseDate(p.From); err != nil {
		return
	}
	if last, err = catalog.ParseDate(p.To); err != nil {
		return
	}
	loc, err = time.LoadLocation(p.TimeZone)
	return
}

// Validate checks the parameters against the business time now (Normalize
// first): the period lies within the past five years and ends before today
// in the report's time zone, from ≤ to. Every problem names its field.
func (p *Params) Validate(now time.Time) []httpapi.FieldError {
	var errs []httpapi.FieldError
	if !p.Type.Valid() {
		errs = append(errs, httpapi.FieldError{Field: "type", Reason: "must be one of partner, customer, user"})
	}
	if p.Format != FormatCSV && p.Format != FormatParquet {
		errs = append(errs, httpapi.FieldError{Field: "format", Reason: "must be csv or parquet"})
	}
	if p.Group != "" && (len(p.Group) > 128 || strings.ContainsAny(p.Group, "\x00/")) {
		errs = append(errs, httpapi.FieldError{Field: "group", Reason: "is not a group id"})
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil || p.TimeZone == "Local" {
		errs = append(errs, httpapi.FieldError{Field: "time_zone", Reason: "must be an IANA time zone such as Asia/Tokyo"})
		loc = time.UTC
	}
	today := catalog.DateOf(now.In(loc))
	oldest := catalog.DateOf(today.In(time.UTC).AddDate(-MaxAgeYears, 0, 0))
	day := func(field, s string) (catalog.Date, bool) {
		d, err := catalog.ParseDate(s)
		if err != nil || d.String() != s {
			errs = append(errs, httpapi.FieldError{Field: field, Reason: "must be a date YYYY-MM-DD"})
			return d, false
		}
		switch {
		case !d.Before(today):
			errs = append(errs, httpapi.FieldError{Field: field, Reason: fmt.Sprintf("must be before today (%s in %s)", today, loc)})
			return d, false
		case d.Before(oldest):
			errs = append(errs, httpapi.FieldError{Field: field, Reason: fmt.Sprintf("must be within the past %d years (on or after %s)", MaxAgeYears, oldest)})
			return d, false
		}
		return d, true
	}
	from, okFrom := day("from", p.From)
	to, okTo := day("to", p.To)
	if okFrom && okTo && to.Before(from) {
		errs = append(errs, httpapi.FieldError{Field: "to", Reason: "must not be before from"})
	}
	return errs
}

// Key identifies what a report covers: two reports with the same key are
// "the same report" (a completed one must be deleted before another is
// generated).
func (p *Params) Key() string {
	return strings.Join([]string{string(p.Type), p.From, p.To, p.Group, p.TimeZone}, "|")
}

// Row is one row of a report. Fields a level does not show are empty.
type Row struct {
	PartnerName        string
	PartnerID          string
	SubscriptionID     string // the service contract
	ServiceName        string
	SKU                string // the calculation element's code
	Description        string // the calculation element's name
	Start, End         catalog.Date
	Quantity           decimal.Decimal
	CustomerID         string
	CustomerExternalID string
	SubscriberID       string
	UserID             string
	WorkspaceID        string
	LocationID         string
}

// Columns returns the header of a report of type t, in spec 003's order.
func Columns(t Type) []string {
	cols := []string{"partner_name", "partner_org_id", "subscription_id", "service_name", "sku", "description",
		"consumption_start_date", "consumption_end_date", "quantity"}
	switch t {
	case TypeCustomer:
		cols = append(cols, "customer_org_id", "customer_external_id", "location_id")
	case TypeUser:
		cols = append(cols, "customer_org_id", "customer_external_id", "subscriber_id", "user_id", "workspace_id", "location_id")
	}
	return cols
}

// Values returns the row's fields for a report of type t, as Columns names them.
func (r *Row) Values(t Type) []string {
	v := []string{r.PartnerName, r.PartnerID, r.SubscriptionID, r.ServiceName, r.SKU, r.Description,
		r.Start.String(), r.End.String(), r.Quantity.String()}
	switch t {
	case TypeCustomer:
		v = append(v, r.CustomerID, r.CustomerExternalID, r.LocationID)
	case TypeUser:
		v = append(v, r.CustomerID, r.CustomerExternalID, r.SubscriberID, r.UserID, r.WorkspaceID, r.LocationID)
	}
	return v
}
