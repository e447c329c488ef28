package catalog

import (
	"fmt"
	"strings"
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
