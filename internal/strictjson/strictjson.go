// Package strictjson decodes a JSON document into a Go value the way
// encoding/json does with DisallowUnknownFields, but does not stop at the
// first problem: every unknown field, every value of the wrong JSON type and
// every value its type refuses is reported with its path in the document
// ("versions[0].valid_from", "attributes.region").
//
// It is built for the error path. Decode first lets encoding/json decode the
// document and walks it only when that fails, so a valid document costs what
// encoding/json costs.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Problem is one thing wrong with a document.
type Problem struct {
	// Path of the value in the document: "versions[0].valid_from",
	// "attributes.region"; "" is the document itself. An unknown field's
	// path is where it was found, its own name included.
	Path   string
	Reason string
}

// Error lists every problem of a document, in document order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		if p.Path == "" {
			parts[i] = p.Reason
		} else {
			parts[i] = p.Path + ": " + p.Reason
		}
	}
	return strings.Join(parts, "; ")
}

// Covers reports whether a problem was found at path, inside the value at
// path, or at a value that contains it: a further check of the value at
// path would only repeat that problem (a field of the wrong type is left
// empty, and "is required" says nothing new). Every path is covered by a
// problem of the document itself (path "").
func (e *Error) Covers(path string) bool {
	for _, p := range e.Problems {
		if Within(path, p.Path) || Within(p.Path, path) {
			return true
		}
	}
	return false
}

// Within reports whether path is prefix itself or a member or element of
// the value at prefix: Within("versions[0].valid_from", "versions[0]") and
// Within("tiers[1]", "tiers") are true, Within("tiers_b", "tiers") is not.
// Every path is within "", the document.
func Within(path, prefix string) bool {
	if prefix == "" || path == prefix {
		return true
	}
	return strings.HasPrefix(path, prefix) && (path[len(prefix)] == '.' || path[len(prefix)] == '[')
}

// Decode decodes the JSON document data into v, a non-nil pointer. Unknown
// fields are refused, and data must hold exactly one JSON value.
//
// It returns nil when encoding/json decodes the document cleanly. When data
// is not one JSON value, it returns encoding/json's syntax error (a
// *json.SyntaxError). Otherwise it returns an *Error naming every problem;
// v is then reset and holds every part of the document that could be
// decoded, the rest left at its zero value, so that the caller can check
// those parts too.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err == io.EOF {
			return nil
		}
	}
	if werr := Walk(data, v); werr != nil || err == nil {
		return werr
	}
	// encoding/json refused what the walk accepts: report its error.
	return &Error{Problems: []Problem{{Reason: strings.TrimPrefix(err.Error(), "json: ")}}}
}

// Walk is Decode without first trying encoding/json, for a caller that did
// so already and got an error.
func Walk(data []byte, v any) error {
	if !json.Valid(data) {
		var raw json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return err
		}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictjson: cannot decode into %T", v)
	}
	rv = rv.Elem()
	rv.SetZero()
	var w walker
	w.value("", bytes.TrimSpace(data), rv)
	if len(w.problems) == 0 {
		return nil
	}
	return &Error{Problems: w.problems}
}

// walker decodes a valid JSON document into a value, part by part,
// collecting problems instead of stopping at the first.
type walker struct {
	problems []Problem
}

func (w *walker) add(path, reason string) {
	w.problems = append(w.problems, Problem{Path: path, Reason: reason})
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	timeType        = reflect.TypeFor[time.Time]()
	decimalType     = reflect.TypeFor[decimal.Decimal]()
)

// custom reports whether values of t decode themselves.
func custom(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
}

func isNull(raw []byte) bool { return string(raw) == "null" }

// value decodes raw (one valid JSON value) into v, which is addressable.
func (w *walker) value(path string, raw []byte, v reflect.Value) {
	t := v.Type()
	if custom(t) {
		w.leaf(path, raw, v)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(raw) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		w.value(path, raw, v.Elem())
	case reflect.Struct:
		switch {
		case isNull(raw): // encoding/json leaves the value as it is
		case raw[0] != '{':
			w.wrongType(path, raw, t)
		default:
			w.object(path, raw, v)
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String || custom(t.Key()) {
			w.leaf(path, raw, v)
			return
		}
		switch {
		case isNull(raw):
			v.SetZero()
		case raw[0] != '{':
			w.wrongType(path, raw, t)
		default:
			w.mapObject(path, raw, v)
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			w.leaf(path, raw, v) // []byte: base64 text
			return
		}
		switch {
		case isNull(raw):
			v.SetZero()
		case raw[0] != '[':
			w.wrongType(path, raw, t)
		default:
			w.array(path, raw, v)
		}
	default:
		w.leaf(path, raw, v)
	}
}

// leaf lets encoding/json decode a value that has no parts to walk.
func (w *walker) leaf(path string, raw []byte, v reflect.Value) {
	if v.Type() == rawMessageType {
		v.SetBytes(bytes.Clone(raw)) // what json.RawMessage.UnmarshalJSON does
		return
	}
	if v.Kind() == reflect.String && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) && !custom(v.Type()) {
		v.SetString(string(raw[1 : len(raw)-1])) // what encoding/json makes of a string without escapes
		return
	}
	err := json.Unmarshal(raw, v.Addr().Interface())
	if err == nil {
		return
	}
	t := v.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var te *json.UnmarshalTypeError
	switch {
	case t == timeType:
		w.add(path, timeReason(raw))
	case t == decimalType:
		w.add(path, decimalReason(raw))
	case errors.As(err, &te):
		w.wrongType(path, raw, t)
	default:
		w.add(path, strings.TrimPrefix(err.Error(), "json: "))
	}
}

// object decodes a JSON object into the struct v, field by field.
func (w *walker) object(path string, raw []byte, v reflect.Value) {
	fields := fieldsOf(v.Type())
	members(raw, func(key string, val []byte) {
		f := fields.lookup(key)
		if f == nil {
			w.add(join(path, key), "unknown field (the fields here: "+fields.names+")")
			return
		}
		w.value(join(path, f.name), val, fieldByIndex(v, f.index))
	})
}

// mapObject decodes a JSON object into the map v (string keys).
func (w *walker) mapObject(path string, raw []byte, v reflect.Value) {
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	members(raw, func(key string, val []byte) {
		elem := reflect.New(t.Elem()).Elem()
		before := len(w.problems)
		w.value(join(path, key), val, elem)
		if len(w.problems) == before {
			v.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), elem)
		}
	})
}

// array decodes a JSON array into the slice v.
func (w *walker) array(path string, raw []byte, v reflect.Value) {
	t := v.Type()
	out := reflect.MakeSlice(t, 0, 0)
	elements(raw, func(i int, val []byte) {
		elem := reflect.New(t.Elem()).Elem()
		w.value(path+"["+strconv.Itoa(i)+"]", val, elem)
		out = reflect.Append(out, elem)
	})
	v.Set(out)
}

// The walk splits values that are known to be valid JSON (Decode checked
// the document) with the scanner below: encoding/json's Decoder, used for
// that, allocated an error for the end of every value.

// members calls fn with every member of a JSON object, in order.
func members(raw []byte, fn func(key string, val []byte)) {
	i := skipSpace(raw, 0) + 1 // {
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return
		}
		end := stringEnd(raw, i)
		key := string(raw[i+1 : end-1])
		if strings.IndexByte(key, '\\') >= 0 || !utf8.ValidString(key) { // as encoding/json reads it: U+FFFD for bad bytes
			_ = json.Unmarshal(raw[i:end], &key)
		}
		i = skipSpace(raw, end) + 1 // :
		i = skipSpace(raw, i)
		end = valueEnd(raw, i)
		fn(key, raw[i:end])
		if i = skipSpace(raw, end); i < len(raw) && raw[i] == ',' {
			i++
		}
	}
}

// elements calls fn with every element of a JSON array, in order.
func elements(raw []byte, fn func(i int, val []byte)) {
	i := skipSpace(raw, 0) + 1 // [
	for n := 0; ; n++ {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] == ']' {
			return
		}
		end := valueEnd(raw, i)
		fn(n, raw[i:end])
		if i = skipSpace(raw, end); i < len(raw) && raw[i] == ',' {
			i++
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd returns the index after the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i // a number, true, false or null
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

func (w *walker) wrongType(path string, raw []byte, t reflect.Type) {
	switch t {
	case timeType:
		w.add(path, timeReason(raw))
	case decimalType:
		w.add(path, decimalReason(raw))
	default:
		w.add(path, "wrong type: must be "+expected(t)+", got "+got(raw))
	}
}

// expected describes the JSON values a Go type takes.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Pointer:
		return expected(t.Elem())
	}
	return "a " + t.String()
}

// got shows a value in a message: short literals as written, others by kind.
func got(raw []byte) string {
	if len(raw) <= 40 && raw[0] != '{' && raw[0] != '[' {
		return string(raw)
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a long string"
	}
	return "a long number"
}

// ExampleTime is the example instant messages about times show.
const ExampleTime = "2026-04-01T00:00:00+09:00"

var dateOnly = regexp.MustCompile(`^"(\d{4}-\d{2}-\d{2})"$`)

// timeReason says what a time must look like. A date alone is refused, not
// guessed: an instant needs the time zone in which the day starts.
func timeReason(raw []byte) string {
	const want = "must be an RFC 3339 timestamp with a time of day and a UTC offset, e.g. "
	if m := dateOnly.FindSubmatch(raw); m != nil {
		d := string(m[1])
		return want + d + "T00:00:00+09:00 (midnight in Japan) or " + d + "T00:00:00Z (midnight UTC), " +
			"not the date " + d + " alone: a date does not say in which time zone its day starts"
	}
	if raw[0] != '"' {
		return "wrong type: " + want + ExampleTime + " (a string), got " + got(raw)
	}
	return want + ExampleTime + ", got " + got(raw)
}

func decimalReason(raw []byte) string {
	const want = `must be a decimal number, e.g. 12.5 or "12.5", got `
	if raw[0] != '"' && raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return "wrong type: " + want + got(raw)
	}
	return want + got(raw)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// ---- struct fields, as encoding/json sees them ----

type field struct {
	name   string
	index  []int
	tagged bool
}

type structFields struct {
	list   []field
	byName map[string]*field
	names  string // "code, name, versions"
}

func (s *structFields) lookup(key string) *field {
	if f, ok := s.byName[key]; ok {
		return f
	}
	for i := range s.list { // encoding/json matches names case-insensitively too
		if strings.EqualFold(s.list[i].name, key) {
			return &s.list[i]
		}
	}
	return nil
}

var fieldCache sync.Map // reflect.Type → *structFields

// fieldsOf lists the JSON fields of a struct type with encoding/json's
// rules: the json tag names a field ("-" hides it), the fields of an
// untagged embedded struct are promoted, and of several fields with one name
// the least deeply embedded wins (a tagged one among equals; none if that is
// still ambiguous).
func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	var all []field
	collect(t, nil, &all)
	// Keep, per name, the field with the shortest index, preferring tagged.
	best := map[string]int{}
	drop := map[string]bool{}
	for i, f := range all {
		j, seen := best[f.name]
		if !seen {
			best[f.name] = i
			continue
		}
		g := all[j]
		switch {
		case len(f.index) < len(g.index), len(f.index) == len(g.index) && f.tagged && !g.tagged:
			best[f.name], drop[f.name] = i, false
		case len(f.index) == len(g.index) && f.tagged == g.tagged:
			drop[f.name] = true
		}
	}
	s := &structFields{byName: map[string]*field{}}
	for i, f := range all {
		if best[f.name] == i && !drop[f.name] {
			s.list = append(s.list, f)
		}
	}
	names := make([]string, len(s.list))
	for i := range s.list {
		s.byName[s.list[i].name] = &s.list[i]
		names[i] = s.list[i].name
	}
	s.names = strings.Join(names, ", ")
	f, _ := fieldCache.LoadOrStore(t, s)
	return f.(*structFields)
}

func collect(t reflect.Type, index []int, out *[]field) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collect(ft, idx, out)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		tagged := name != ""
		if !tagged {
			name = sf.Name
		}
		*out = append(*out, field{name: name, index: idx, tagged: tagged})
	}
}

// fieldByIndex is v.FieldByIndex, allocating nil embedded pointers.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}
