package schemas

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var (
	decimalType = reflect.TypeOf(decimal.Decimal{})
	timeType    = reflect.TypeOf(time.Time{})
)

// fill sets every field of v (a pointer's target, recursively) to a
// distinct non-zero value, so that a field the binary encoding leaves out
// comes back different.
func fill(v reflect.Value, seed *int) {
	*seed++
	n := *seed
	switch {
	case v.Type() == decimalType:
		v.Set(reflect.ValueOf(decimal.New(int64(n)*1234567, -int32(n%9))))
		return
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Date(2026, 3, n%28+1, 10, 0, n, 123456789+n, time.FixedZone("", 9*3600))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d-é", n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 3 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, seed)
			fill(e, seed)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			fill(v.Field(i), seed)
		}
	default:
		panic("fill: add a case for " + v.Type().String())
	}
}

// diff returns the path of the first difference between a and b, or "".
// Decimals must have the same coefficient and exponent (an exact round
// trip, not only an equal value) unless valueOnly (JSON keeps the value, not
// the trailing zeros); times the same instant and offset.
func diff(path string, a, b reflect.Value) string { return diffOf(path, a, b, false) }

func diffOf(path string, a, b reflect.Value, valueOnly bool) string {
	switch {
	case a.Type() == decimalType:
		da, db := a.Interface().(decimal.Decimal), b.Interface().(decimal.Decimal)
		if valueOnly && !da.Equal(db) || !valueOnly && (da.Coefficient().Cmp(db.Coefficient()) != 0 || da.Exponent() != db.Exponent()) {
			return fmt.Sprintf("%s: %s (%s e%d) != %s (%s e%d)", path, da, da.Coefficient(), da.Exponent(), db, db.Coefficient(), db.Exponent())
		}
		return ""
	case a.Type() == timeType:
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		_, oa := ta.Zone()
		_, ob := tb.Zone()
		if !ta.Equal(tb) || oa != ob {
			return fmt.Sprintf("%s: %v != %v", path, ta, tb)
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + ": one is nil"
			}
			return ""
		}
		return diffOf(path, a.Elem(), b.Elem(), valueOnly)
	case reflect.Struct:
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				continue
			}
			if d := diffOf(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i), valueOnly); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return fmt.Sprintf("%s: %v != %v", path, a.Interface(), b.Interface())
	}
	return ""
}

// wireCase is one record type with its binary codec.
type wireCase struct {
	name      string
	new       func() any
	marshal   func(any) []byte
	unmarshal func([]byte, any) error
}

var wireCases = []wireCase{
	{"UsageEvent", func() any { return &UsageEvent{} },
		func(v any) []byte { return MarshalEvent(v.(*UsageEvent)) },
		func(b []byte, v any) error { return UnmarshalEvent(b, v.(*UsageEvent)) }},
	{"RatedLine", func() any { return &RatedLine{} },
		func(v any) []byte { return MarshalRatedLine(v.(*RatedLine)) },
		func(b []byte, v any) error { return UnmarshalRatedLine(b, v.(*RatedLine)) }},
	{"Unrated", func() any { return &Unrated{} },
		func(v any) []byte { return MarshalUnrated(v.(*Unrated)) },
		func(b []byte, v any) error { return UnmarshalUnrated(b, v.(*Unrated)) }},
}

// Every exported field of every record the binary encoding carries, filled
// with a non-zero value, comes back exactly: a field added to UsageEvent,
// RatedLine, Unrated or RecordOrigin and not to the encoding fails here. The
// same record read from its JSON is the same too (readers take both).
func TestWireCoversEveryField(t *testing.T) {
	for _, c := range wireCases {
		t.Run(c.name, func(t *testing.T) {
			seed := 0
			in := c.new()
			fill(reflect.ValueOf(in).Elem(), &seed)
			b := c.marshal(in)
			if !IsBinary(b) {
				t.Fatalf("encoded value %x is not marked binary", b[:3])
			}
			out := c.new()
			if err := c.unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
			if d := diff(c.name, reflect.ValueOf(in), reflect.ValueOf(out)); d != "" {
				t.Errorf("binary round trip: %s", d)
			}
			js, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON := c.new()
			if err := c.unmarshal(js, fromJSON); err != nil {
				t.Fatalf("JSON not accepted: %v", err)
			}
			if d := diffOf(c.name, reflect.ValueOf(out), reflect.ValueOf(fromJSON), true); d != "" {
				t.Errorf("binary and JSON decode differently: %s", d)
			}
			for i := range len(b) {
				if err := c.unmarshal(b[:i], c.new()); err == nil {
					t.Errorf("a value cut to %d of %d bytes decoded", i, len(b))
				}
			}
			if err := c.unmarshal(append(b, 0), c.new()); err == nil {
				t.Error("a value with a trailing byte decoded")
			}
		})
	}
}

// With SetWireJSON the Marshal functions write JSON, which every reader
// takes: the record comes back with the same values.
func TestWireJSONForRollingUpgrades(t *testing.T) {
	SetWireJSON(true)
	defer SetWireJSON(false)
	for _, c := range wireCases {
		seed := 0
		in := c.new()
		fill(reflect.ValueOf(in).Elem(), &seed)
		b := c.marshal(in)
		if IsBinary(b) || !json.Valid(b) {
			t.Fatalf("%s: wrote %q, want JSON", c.name, b)
		}
		out := c.new()
		if err := c.unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
		if d := diffOf(c.name, reflect.ValueOf(in), reflect.ValueOf(out), true); d != "" {
			t.Errorf("%s", d)
		}
	}
	far := UsageEvent{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if !IsBinary(MarshalEvent(&far)) {
		t.Error("a time JSON cannot hold was not written in the binary encoding")
	}
}

// Edge values come back exactly: zero values, decimals beyond 18 digits
// and negative, times before 1970 and the zero time, empty and absent maps.
func TestWireEdgeValues(t *testing.T) {
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890123456789", 10)
	for _, ev := range []UsageEvent{
		{},
		{Tenant: "t", ID: "i", Quantity: decimal.NewFromBigInt(huge, -9), Time: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
			Attributes: map[string]string{}},
		{Quantity: decimal.RequireFromString("-0.000000001"), Time: time.Unix(-1, 999999999).UTC(),
			Attributes: map[string]string{"": "", "k": strings.Repeat("v", 300)}, ReceivedAt: time.Now().UTC()},
		{Quantity: decimal.RequireFromString("999999999999999999"), Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -12*3600))},
		{Quantity: decimal.RequireFromString("1000000000000000000")},
	} {
		var out UsageEvent
		if err := UnmarshalEvent(MarshalEvent(&ev), &out); err != nil {
			t.Fatalf("%+v: %v", ev, err)
		}
		if d := diff("event", reflect.ValueOf(ev), reflect.ValueOf(out)); d != "" && !(len(ev.Attributes) == 0 && strings.HasSuffix(d, "map[]")) {
			t.Errorf("%s", d)
		}
	}
}

// FuzzWire decodes arbitrary bytes as each record: no panic, and whatever
// decodes encodes back to a value that decodes to the same record.
func FuzzWire(f *testing.F) {
	for _, c := range wireCases {
		seed := 0
		in := c.new()
		fill(reflect.ValueOf(in).Elem(), &seed)
		f.Add(c.marshal(in))
	}
	f.Add([]byte{0, 1, 1})
	f.Add([]byte(`{"tenant":"t","id":"i","quantity":"1.5"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range wireCases {
			v := c.new()
			if c.unmarshal(data, v) != nil || !IsBinary(data) {
				continue
			}
			again := c.new()
			if err := c.unmarshal(c.marshal(v), again); err != nil {
				t.Fatalf("%s: re-encoded value does not decode: %v", c.name, err)
			}
			if d := diff(c.name, reflect.ValueOf(v), reflect.ValueOf(again)); d != "" {
				t.Fatalf("%s: %s", c.name, d)
			}
		}
	})
}

// BenchmarkWire compares the binary encoding with JSON for a rated line
// (the largest record, an event inside) as the pipeline writes and reads it.
//
//	go test -run '^$' -bench Wire -benchmem ./schemas/
func BenchmarkWire(b *testing.B) {
	at := time.Date(2026, 3, 14, 10, 0, 0, 123456789, time.UTC)
	l := RatedLine{LineID: "0123456789abcdef0123456789abcdef", Item: "k-1/api_calls",
		Event: UsageEvent{Tenant: "bench", ID: "evt-000000123456", Customer: "cust-0042", Element: "api_calls",
			Quantity: decimal.RequireFromString("12.5"), Time: at, ReceivedAt: at.Add(time.Second),
			Attributes: map[string]string{"region": "jp-east"}},
		UnitPrice: decimal.RequireFromString("0.35"), UnitPriced: true, Amount: decimal.RequireFromString("4"),
		Currency: "JPY", Period: "2026-03", RatedAt: at.Add(2 * time.Second), Record: &RecordOrigin{Partition: 3, Offset: 123456}}
	js, _ := json.Marshal(&l)
	bin := MarshalRatedLine(&l)
	b.Logf("rated line: JSON %d bytes, binary %d bytes", len(js), len(bin))
	b.Run("json/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&l)
		}
	})
	b.Run("json/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out RatedLine
			_ = json.Unmarshal(js, &out)
		}
	})
	b.Run("binary/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = MarshalRatedLine(&l)
		}
	})
	b.Run("binary/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out RatedLine
			_ = UnmarshalRatedLine(bin, &out)
		}
	})
}
