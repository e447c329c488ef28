package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/strictjson"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Limits bound what one request and one record may carry.
type Limits struct {
	MaxBodyBytes  int64         // larger bodies get 413
	MaxRecords    int           // more records in one request get 413
	MaxFutureSkew time.Duration // event times further ahead of now are rejected
	// MaxAge rejects events older than now − MaxAge: past the dedupe window a
	// repeat could not be detected any more, so such a record is refused with
	// a clear reason rather than risk a double charge. Zero: no limit.
	MaxAge time.Duration
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxBodyBytes: 16 << 20, MaxRecords: 10000, MaxFutureSkew: 24 * time.Hour, MaxAge: 35 * 24 * time.Hour}

// errTooMany is returned when a body holds more records than allowed.
var errTooMany = errors.New("too many records")

// framingError means the body as a whole is not a JSON value, array or NDJSON
// stream, so no record in it can be trusted.
type framingError struct{ err error }

func (e framingError) Error() string { return e.err.Error() }

// splitRecords cuts a request body into raw records without decoding them. An
// NDJSON line that is not JSON stays a record of its own, to be rejected alone.
func splitRecords(body []byte, ndjson bool, maxRecords int) ([]json.RawMessage, error) {
	if ndjson {
		var out []json.RawMessage
		for rest := body; len(rest) > 0; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if len(out) == maxRecords {
				return nil, errTooMany
			}
			out = append(out, json.RawMessage(line))
		}
		return out, nil
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, framingError{errors.New("empty body")}
	}
	if trimmed[0] != '[' {
		if !json.Valid(trimmed) {
			return nil, framingError{errors.New("body is not valid JSON")}
		}
		return []json.RawMessage{trimmed}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil {
		return nil, framingError{fmt.Errorf("body is not valid JSON: %w", err)}
	}
	var out []json.RawMessage
	for dec.More() {
		if len(out) == maxRecords {
			return nil, errTooMany
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, framingError{fmt.Errorf("record %d: body is not valid JSON: %w", len(out), err)}
		}
		out = append(out, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, framingError{fmt.Errorf("body is not valid JSON: %w", err)}
	}
	if dec.More() || dec.InputOffset() != int64(len(trimmed)) {
		return nil, framingError{errors.New("body has data after the JSON array")}
	}
	return out, nil
}

// wireEvent is a usage record as clients send it.
type wireEvent struct {
	ID         *string           `json:"id"`
	Customer   *string           `json:"customer"`
	Element    *string           `json:"element"`
	Quantity   json.RawMessage   `json:"quantity"`
	Time       *string           `json:"time"`
	Contract   *string           `json:"contract"`
	Attributes map[string]string `json:"attributes"`
}

// maxQuantity bounds one record's quantity so that sums over many records
// stay far inside ClickHouse's Decimal(38, 9).
var maxQuantity = decimal.New(1, 18)

const quantityScale = 9

// parseEvent decodes and validates one record. It returns every problem found,
// each naming its field, or a complete event.
func parseEvent(raw json.RawMessage, tenant string, now time.Time, lim Limits) (schemas.UsageEvent, []httpapi.FieldError) {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		// encoding/json stops at the first problem; name them all.
		return parseEventSlow(raw, tenant, now, lim)
	}
	if dec.More() {
		return schemas.UsageEvent{}, []httpapi.FieldError{{Field: "", Reason: "record has data after the JSON object"}}
	}
	return validateEvent(&w, tenant, now, lim)
}

// parseEventSlow decodes a record that encoding/json refused field by field,
// so that every unknown field and value of the wrong type is named, and then
// validates the fields that could be read: one error per bad field.
func parseEventSlow(raw json.RawMessage, tenant string, now time.Time, lim Limits) (schemas.UsageEvent, []httpapi.FieldError) {
	first := func() error { // encoding/json's own error, for what the walk accepts
		var w wireEvent
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		return dec.Decode(&w)
	}
	var w wireEvent
	err := strictjson.Walk(raw, &w)
	var bad *strictjson.Error
	if !errors.As(err, &bad) {
		if err == nil {
			err = first()
		}
		return schemas.UsageEvent{}, []httpapi.FieldError{decodeError(err)}
	}
	errs := make([]httpapi.FieldError, 0, len(bad.Problems)+1)
	whole := false
	for _, p := range bad.Problems {
		reason := p.Reason
		if p.Path == "time" { // a *string, so only its JSON type can be wrong
			_, got, _ := strings.Cut(reason, ", got ")
			reason = "wrong type: must be a string holding an RFC 3339 timestamp such as 2026-11-23T10:00:00+09:00, got " + got
		}
		errs = append(errs, httpapi.FieldError{Field: p.Path, Reason: reason})
		whole = whole || p.Path == ""
	}
	if whole {
		return schemas.UsageEvent{}, errs // not an object: there are no fields to check
	}
	_, more := validateEvent(&w, tenant, now, lim)
	for _, e := range more {
		if !bad.Covers(e.Field) {
			errs = append(errs, e)
		}
	}
	return schemas.UsageEvent{}, errs
}

// validateEvent checks a decoded record. It returns every problem found,
// each naming its field, or a complete event.
func validateEvent(w *wireEvent, tenant string, now time.Time, lim Limits) (schemas.UsageEvent, []httpapi.FieldError) {
	var errs []httpapi.FieldError
	bad := func(field, reason string) { errs = append(errs, httpapi.FieldError{Field: field, Reason: reason}) }

	e := schemas.UsageEvent{Tenant: tenant, ReceivedAt: now}
	e.ID = requiredText(w.ID, "id", 128, bad)
	e.Customer = requiredText(w.Customer, "customer", 128, bad)
	if w.Element == nil || *w.Element == "" {
		bad("element", "required")
	} else if !schemas.ValidCode(*w.Element) {
		bad("element", "must be 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.', ':'")
	} else {
		e.Element = *w.Element
	}
	if w.Contract != nil {
		if *w.Contract == "" || !validText(*w.Contract, 128) {
			bad("contract", "must be 1-128 printable characters when given")
		} else {
			e.Contract = *w.Contract
		}
	}
	if q, reason := parseQuantity(w.Quantity); reason != "" {
		bad("quantity", reason)
	} else {
		e.Quantity = q
	}
	if w.Time == nil || *w.Time == "" {
		bad("time", "required")
	} else if t, err := time.Parse(time.RFC3339Nano, *w.Time); err != nil {
		bad("time", "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00+09:00")
	} else if t.Year() < 2000 || t.Year() > 2099 {
		bad("time", "must be between the years 2000 and 2099")
	} else if lim.MaxFutureSkew > 0 && t.After(now.Add(lim.MaxFutureSkew)) {
		bad("time", fmt.Sprintf("is more than %s in the future (the allowed clock skew)", span(lim.MaxFutureSkew)))
	} else if lim.MaxAge > 0 && t.Before(now.Add(-lim.MaxAge)) {
		bad("time", fmt.Sprintf("is older than the tenant's duplicate-detection window of %s; such usage cannot be accepted safely", span(lim.MaxAge)))
	} else {
		e.Time = t.UTC()
	}
	if len(w.Attributes) > 32 {
		bad("attributes", "at most 32 attributes")
	}
	for k, v := range w.Attributes {
		if k == "" || !validText(k, 64) {
			bad("attributes", fmt.Sprintf("key %q must be 1-64 printable characters", k))
		} else if !validText(v, 256) {
			bad("attributes."+k, "must be at most 256 printable characters")
		}
	}
	if len(w.Attributes) > 0 {
		e.Attributes = w.Attributes
	}
	return e, errs
}

// span renders a duration for a person: "35 days", "36h0m0s".
func span(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

func requiredText(s *string, field string, max int, bad func(field, reason string)) string {
	switch {
	case s == nil || *s == "":
		bad(field, "required")
	case !validText(*s, max):
		bad(field, fmt.Sprintf("must be 1-%d printable characters", max))
	default:
		return *s
	}
	return ""
}

func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// parseQuantity accepts a JSON number or a JSON string holding a decimal.
func parseQuantity(raw json.RawMessage) (decimal.Decimal, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return decimal.Decimal{}, "required"
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return decimal.Decimal{}, "must be a decimal number or a string holding one"
		}
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return decimal.Decimal{}, "must be a decimal number or a string holding one"
	}
	q, err := decimal.NewFromString(strings.TrimSpace(text))
	if err != nil {
		return decimal.Decimal{}, "must be a decimal number or a string holding one"
	}
	switch {
	case q.IsNegative():
		return decimal.Decimal{}, "must not be negative"
	case q.GreaterThanOrEqual(maxQuantity):
		return decimal.Decimal{}, "must be less than 10^18"
	case !q.Equal(q.Truncate(quantityScale)):
		return decimal.Decimal{}, fmt.Sprintf("has more than %d decimal places", quantityScale)
	}
	return q, ""
}

func decodeError(err error) httpapi.FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return httpapi.FieldError{Field: typeErr.Field, Reason: "must be a " + jsonKind(typeErr.Type.Kind().String())}
	case errors.As(err, &syntaxErr):
		return httpapi.FieldError{Reason: "malformed JSON: " + syntaxErr.Error()}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return httpapi.FieldError{Field: name, Reason: "unknown field"}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return httpapi.FieldError{Reason: "malformed JSON: unexpected end of record"}
	}
	return httpapi.FieldError{Reason: "malformed record: " + err.Error()}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "ptr", "string":
		return "string"
	case "map", "struct":
		return "JSON object"
	}
	return goKind
}
