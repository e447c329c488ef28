package imports

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/httpapi"
)

// splitCSVLine splits one CSV line (RFC 4180 quoting; no line breaks inside
// fields) into its fields, reusing dst.
func splitCSVLine(line []byte, dst []string) ([]string, error) {
	dst = dst[:0]
	for i := 0; ; {
		if i < len(line) && line[i] == '"' {
			var field []byte
			i++
			for {
				j := bytes.IndexByte(line[i:], '"')
				if j < 0 {
					return nil, errors.New(`unterminated quoted field (a record must be on one line)`)
				}
				field = append(field, line[i:i+j]...)
				i += j + 1
				if i < len(line) && line[i] == '"' {
					field = append(field, '"')
					i++
					continue
				}
				break
			}
			dst = append(dst, string(field))
			if i == len(line) {
				return dst, nil
			}
			if line[i] != ',' {
				return nil, fmt.Errorf(`unexpected %q after a quoted field`, line[i])
			}
			i++
			continue
		}
		j := bytes.IndexByte(line[i:], ',')
		end := len(line)
		if j >= 0 {
			end = i + j
		}
		if bytes.IndexByte(line[i:end], '"') >= 0 {
			return nil, errors.New(`bare " in an unquoted field (quote the field and double the quote)`)
		}
		dst = append(dst, string(line[i:end]))
		if j < 0 {
			return dst, nil
		}
		i = end + 1
	}
}

// AttrPrefix starts the name of a CSV attribute column: attr.region.
const AttrPrefix = "attr."

// csvColumns maps a CSV header to record fields.
type csvColumns struct {
	n                                      int // columns in the header
	id, customer, element, quantity, time_ int
	contract                               int // -1 when absent
	attrs                                  []attrColumn
}

type attrColumn struct {
	index int
	key   string
}

// parseHeader reads a CSV header row. Column names are case-insensitive
// except for attribute keys; unknown and repeated columns are errors, so
// that a misspelt column never silently drops data.
func parseHeader(line []byte) (csvColumns, []httpapi.FieldError) {
	line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	names, err := splitCSVLine(line, nil)
	if err != nil {
		return csvColumns{}, []httpapi.FieldError{{Field: "header", Reason: err.Error()}}
	}
	c := csvColumns{n: len(names), id: -1, customer: -1, element: -1, quantity: -1, time_: -1, contract: -1}
	var errs []httpapi.FieldError
	seen := map[string]bool{}
	for i, raw := range names {
		name := strings.TrimSpace(raw)
		lower := strings.ToLower(name)
		if seen[lower] {
			errs = append(errs, httpapi.FieldError{Field: "header", Reason: fmt.Sprintf("column %q appears twice", name)})
			continue
		}
		seen[lower] = true
		switch {
		case lower == "id":
			c.id = i
		case lower == "customer":
			c.customer = i
		case lower == "element":
			c.element = i
		case lower == "quantity":
			c.quantity = i
		case lower == "time":
			c.time_ = i
		case lower == "contract":
			c.contract = i
		case strings.HasPrefix(lower, AttrPrefix) && len(name) > len(AttrPrefix):
			c.attrs = append(c.attrs, attrColumn{index: i, key: name[len(AttrPrefix):]})
		default:
			errs = append(errs, httpapi.FieldError{Field: "header", Reason: fmt.Sprintf(
				"unknown column %q (columns: id, customer, element, quantity, time, contract, attr.<key>)", name)})
		}
	}
	for _, req := range []struct {
		name string
		idx  int
	}{{"id", c.id}, {"customer", c.customer}, {"element", c.element}, {"quantity", c.quantity}, {"time", c.time_}} {
		if req.idx < 0 {
			errs = append(errs, httpapi.FieldError{Field: "header", Reason: "required column " + req.name + " is missing"})
		}
	}
	return c, errs
}

// fields maps a row to a record's fields; the row must have c.n fields.
func (c csvColumns) fields(row []string) ingest.Fields {
	f := ingest.Fields{ID: row[c.id], Customer: row[c.customer], Element: row[c.element],
		Quantity: row[c.quantity], Time: row[c.time_]}
	if c.contract >= 0 {
		f.Contract = row[c.contract]
	}
	for _, a := range c.attrs {
		if v := row[a.index]; v != "" {
			if f.Attributes == nil {
				f.Attributes = make(map[string]string, len(c.attrs))
			}
			f.Attributes[a.key] = v
		}
	}
	return f
}
