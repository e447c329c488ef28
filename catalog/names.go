package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// entityKinds names each list of a catalogue document: the singular for
// people and the field that identifies an entry.
var entityKinds = map[string][2]string{
	"services":           {"service", "code"},
	"plans":              {"plan", "code"},
	"fees":               {"fee", "code"},
	"elements":           {"element", "code"},
	"rate_tables":        {"rate table", "code"},
	"discount_tables":    {"discount table", "code"},
	"basic_contracts":    {"basic contract", "id"},
	"service_contracts":  {"service contract", "id"},
	"discount_contracts": {"discount contract", "id"},
}

// EntityNames reads the codes and ids of a catalogue document's entries
// (JSON) by their place, loosely: "fees[0]" → `fee "transfer"`. A document
// that does not decode still names the entries it can; an entry without a
// code is named by its place only.
type EntityNames map[string]string

// NamesOf returns the entity names of a JSON catalogue document.
func NamesOf(doc []byte) EntityNames {
	var lists map[string]json.RawMessage
	if json.Unmarshal(doc, &lists) != nil {
		return nil
	}
	out := EntityNames{}
	for list, raw := range lists {
		kind, ok := entityKinds[list]
		if !ok {
			continue
		}
		var entries []map[string]json.RawMessage
		if json.Unmarshal(raw, &entries) != nil {
			continue
		}
		for i, e := range entries {
			var id string
			if json.Unmarshal(e[kind[1]], &id) != nil || id == "" {
				continue
			}
			out[fmt.Sprintf("%s[%d]", list, i)] = fmt.Sprintf("%s %q", kind[0], id)
		}
	}
	return out
}

var entryPlace = regexp.MustCompile(`^[a-z_]+\[[0-9]+\]`)

// Describe renders a problem at field with the entity it belongs to:
// `fee "transfer" fees[0].versions[0].element: unknown element "bytes"`.
func (n EntityNames) Describe(f FieldError) string {
	if place := entryPlace.FindString(f.Field); place != "" {
		if name, ok := n[place]; ok {
			return fmt.Sprintf("%s %s: %s", name, f.Field, f.Reason)
		}
	}
	if f.Field == "" {
		return f.Reason
	}
	return fmt.Sprintf("%s: %s", f.Field, f.Reason)
}

// Explain renders the problems of a catalogue document's decode or
// validation error one per line, each with the entity it belongs to (doc is
// the document as JSON); other errors as they are.
func Explain(doc []byte, err error) string {
	var fields []FieldError
	var de *DecodeError
	var ve *ValidationError
	switch {
	case errors.As(err, &de):
		fields = de.Fields
	case errors.As(err, &ve):
		fields = ve.Fields
	default:
		return err.Error()
	}
	names := NamesOf(doc)
	lines := make([]string, len(fields))
	for i, f := range fields {
		lines[i] = "  " + names.Describe(f)
	}
	what := "mistakes"
	if len(fields) == 1 {
		what = "mistake"
	}
	return fmt.Sprintf("%d %s:\n%s", len(fields), what, strings.Join(lines, "\n"))
}
