package ingest

import (
	"encoding/json"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// ParseRecord decodes and validates one JSON usage record exactly as
// POST /v1/usage does (one line of an NDJSON import is one record). now is
// the receive time: it is the event's ReceivedAt and the reference of the
// age and future-skew checks.
func ParseRecord(raw []byte, tenant string, now time.Time, lim Limits) (schemas.UsageEvent, []httpapi.FieldError) {
	return parseEvent(json.RawMessage(raw), tenant, now, lim)
}

// Fields are a usage record as text fields, as one row of a CSV import
// gives them. An empty field is an absent one.
type Fields struct {
	ID, Customer, Element, Quantity, Time, Contract string
	Attributes                                      map[string]string // only non-empty values
}

// ValidateFields validates a record given as text fields with the same rules,
// and the same reasons, as ParseRecord applies to the JSON record with these
// fields (quantity as a JSON string).
func ValidateFields(f Fields, tenant string, now time.Time, lim Limits) (schemas.UsageEvent, []httpapi.FieldError) {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	w := wireEvent{ID: opt(f.ID), Customer: opt(f.Customer), Element: opt(f.Element), Time: opt(f.Time),
		Contract: opt(f.Contract), Attributes: f.Attributes}
	if f.Quantity != "" {
		q, err := json.Marshal(f.Quantity)
		if err != nil {
			return schemas.UsageEvent{}, []httpapi.FieldError{{Field: "quantity", Reason: "cannot be encoded"}}
		}
		w.Quantity = q
	}
	return validateEvent(&w, tenant, now, lim)
}

// Message is the usage.raw message of a validated event, exactly as the
// ingest handler writes it: keyed by tenant/customer, the event in the
// binary encoding (schemas.MarshalEvent; readers take JSON too),
// timestamped with its receive time, with the headers the dedupe stage
// claims it by (schemas.RawHeaders).
func Message(ev *schemas.UsageEvent) (kafka.Message, error) {
	return kafka.Message{Key: ev.PartitionKey(), Value: schemas.MarshalEvent(ev), Time: ev.ReceivedAt, Headers: schemas.RawHeaders(ev)}, nil
}
