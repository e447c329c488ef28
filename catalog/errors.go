package catalog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kakin-dev/kakin/internal/strictjson"
)

// FieldError is one validation problem: the JSON path of the field and why.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Errors collects validation problems. Its zero value is ready to use.
type Errors struct {
	List []FieldError
}

// Add records a problem with field.
func (e *Errors) Add(field, reason string) {
	e.List = append(e.List, FieldError{Field: field, Reason: reason})
}

// Err returns the collected problems as an error, or nil if there are none.
func (e *Errors) Err() error {
	if len(e.List) == 0 {
		return nil
	}
	return &ValidationError{Fields: e.List}
}

// ValidationError is returned by every Validate method.
type ValidationError struct {
	Fields []FieldError
}

func (v *ValidationError) Error() string {
	parts := make([]string, len(v.Fields))
	for i, f := range v.Fields {
		parts[i] = fmt.Sprintf("%s: %s", f.Field, f.Reason)
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// DecodeError is a document that does not have the shape of its type:
// unknown fields, values of the wrong JSON type, and values that cannot be
// read (a time without a UTC offset, a date not written YYYY-MM-DD). Fields
// names every one by its path.
type DecodeError struct {
	Fields []FieldError
	err    *strictjson.Error
}

func (d *DecodeError) Error() string { return d.err.Error() }

// Covers reports whether a problem was found at field, inside it or at a
// value that contains it; a validation error of such a field would only
// repeat it (the field was left empty).
func (d *DecodeError) Covers(field string) bool { return d.err.Covers(field) }

// DecodeJSON decodes one JSON document into v (a pointer to a catalogue
// type). Unknown fields are refused. It does not stop at the first problem:
// a document that does not decode gives a *DecodeError naming every
// problem, and v then holds the parts that could be read (to validate them
// too). Data that is not one JSON value gives encoding/json's syntax error.
//
// Times (valid_from, valid_to) must be RFC 3339 instants with a UTC offset,
// e.g. 2026-04-01T00:00:00+09:00: a date alone is refused rather than read
// as midnight somewhere, because a master's versions apply to the contracts
// of every time zone and no zone is the tenant's.
func DecodeJSON(data []byte, v any) error {
	err := strictjson.Decode(data, v)
	var se *strictjson.Error
	if !errors.As(err, &se) {
		return err
	}
	d := &DecodeError{err: se, Fields: make([]FieldError, len(se.Problems))}
	for i, p := range se.Problems {
		d.Fields[i] = FieldError{Field: p.Path, Reason: p.Reason}
	}
	return d
}
