package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestParseEventValid(t *testing.T) {
	tests := []struct {
		name, in, wantQty string
	}{
		{"number quantity", `{"id":"e1","customer":"c1","element":"api_calls","quantity":3,"time":"2026-11-01T10:00:00+09:00"}`, "3"},
		{"string quantity", `{"id":"e1","customer":"c1","element":"api_calls","quantity":"0.000000001","time":"2026-11-01T10:00:00Z"}`, "0.000000001"},
		{"exponent", `{"id":"e1","customer":"c1","element":"gb","quantity":1.5e3,"time":"2026-11-01T10:00:00Z"}`, "1500"},
		{"trailing zeros beyond scale", `{"id":"e1","customer":"c1","element":"gb","quantity":"1.5000000000000","time":"2026-11-01T10:00:00Z"}`, "1.5"},
		{"zero", `{"id":"e1","customer":"c1","element":"gb","quantity":0,"time":"2026-11-01T10:00:00Z","contract":"k1","attributes":{"region":"jp"}}`, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, errs := parseEvent(json.RawMessage(tt.in), "acme", testNow, DefaultLimits)
			if len(errs) > 0 {
				t.Fatalf("errors: %+v", errs)
			}
			if ev.Quantity.String() != tt.wantQty {
				t.Errorf("quantity = %s, want %s", ev.Quantity, tt.wantQty)
			}
			if ev.Tenant != "acme" || !ev.ReceivedAt.Equal(testNow) || ev.Time.Location() != time.UTC {
				t.Errorf("tenant/received/time not set: %+v", ev)
			}
		})
	}
}

func TestParseEventRejects(t *testing.T) {
	tests := []struct {
		name, in, field, reason string
	}{
		{"missing id", `{"customer":"c","element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`, "id", "required"},
		{"missing customer", `{"id":"1","element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`, "customer", "required"},
		{"bad element", `{"id":"1","customer":"c","element":"a b","quantity":1,"time":"2026-11-01T00:00:00Z"}`, "element", "must be"},
		{"missing quantity", `{"id":"1","customer":"c","element":"e","time":"2026-11-01T00:00:00Z"}`, "quantity", "required"},
		{"negative quantity", `{"id":"1","customer":"c","element":"e","quantity":-1,"time":"2026-11-01T00:00:00Z"}`, "quantity", "negative"},
		{"text quantity", `{"id":"1","customer":"c","element":"e","quantity":"ten","time":"2026-11-01T00:00:00Z"}`, "quantity", "decimal"},
		{"bool quantity", `{"id":"1","customer":"c","element":"e","quantity":true,"time":"2026-11-01T00:00:00Z"}`, "quantity", "decimal"},
		{"too precise", `{"id":"1","customer":"c","element":"e","quantity":"0.0000000001","time":"2026-11-01T00:00:00Z"}`, "quantity", "decimal places"},
		{"too large", `{"id":"1","customer":"c","element":"e","quantity":"1000000000000000000","time":"2026-11-01T00:00:00Z"}`, "quantity", "10^18"},
		{"bad time", `{"id":"1","customer":"c","element":"e","quantity":1,"time":"yesterday"}`, "time", "RFC 3339"},
		{"future time", `{"id":"1","customer":"c","element":"e","quantity":1,"time":"2026-11-25T00:00:00Z"}`, "time", "future"},
		{"older than the window", `{"id":"1","customer":"c","element":"e","quantity":1,"time":"2026-10-18T11:59:59Z"}`, "time", "window"},
		{"unknown field", `{"id":"1","customer":"c","element":"e","quantity":1,"time":"2026-11-01T00:00:00Z","qty":2}`, "qty", "unknown field"},
		{"wrong type", `{"id":1,"customer":"c","element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`, "id", "must be a string"},
		{"control char", `{"id":"a\u0000b","customer":"c","element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`, "id", "printable"},
		{"not an object", `[1]`, "", "must be"},
		{"malformed", `{"id":`, "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parseEvent(json.RawMessage(tt.in), "acme", testNow, DefaultLimits)
			if len(errs) == 0 {
				t.Fatal("accepted, want rejection")
			}
			for _, e := range errs {
				if e.Field == tt.field && strings.Contains(e.Reason, tt.reason) {
					return
				}
			}
			t.Errorf("errors %+v, want field %q with reason containing %q", errs, tt.field, tt.reason)
		})
	}
}

func TestSplitRecords(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ndjson bool
		want   int
		errSub string
	}{
		{"single", `{"a":1}`, false, 1, ""},
		{"array", ` [ {"a":1}, {"a":2} ] `, false, 2, ""},
		{"ndjson with blank and bad line", "{\"a\":1}\n\n{bad\n{\"a\":3}\n", true, 3, ""},
		{"empty", "  ", false, 0, "empty"},
		{"truncated array", `[{"a":1},`, false, 0, "not valid JSON"},
		{"trailing data", `[{"a":1}] x`, false, 0, "after the JSON array"},
		{"too many", `[1,2,3,4]`, false, 0, "too many"},
		{"too many ndjson", "1\n2\n3\n4\n", true, 0, "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitRecords([]byte(tt.body), tt.ndjson, 3)
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("err = %v, want containing %q", err, tt.errSub)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d records, err %v; want %d", len(got), err, tt.want)
			}
		})
	}
}

// TestSplitRecordsLargeNDJSON guards against records aliasing a reused read
// buffer: every record of a body far larger than any internal buffer must
// come back intact.
func TestSplitRecordsLargeNDJSON(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, `{"id":"e%06d","customer":"c","element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`+"\r\n", i)
	}
	recs, err := splitRecords([]byte(b.String()), true, 10000)
	if err != nil || len(recs) != 5000 {
		t.Fatalf("got %d records, err %v", len(recs), err)
	}
	for i, r := range recs {
		ev, errs := parseEvent(r, "t", testNow, DefaultLimits)
		if len(errs) > 0 || ev.ID != fmt.Sprintf("e%06d", i) {
			t.Fatalf("record %d: %+v %v", i, ev, errs)
		}
	}
}

// TestParseEventReportsEveryField: a record with several bad fields gets one
// error per field, each naming the field, however the fields are wrong
// (wrong JSON type, unknown, missing, invalid value), and nothing twice.
func TestParseEventReportsEveryField(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "field: reason substring", in any order; exactly these fields
	}{
		{"three wrong types", `{"id":"1","customer":5,"element":"e","quantity":true,"time":7}`,
			[]string{"customer: must be a string", "quantity: decimal", "time: RFC 3339"}},
		{"every field wrong", `{"id":false,"customer":[1],"element":{},"quantity":"x","time":1.5,"contract":3,"attributes":[]}`,
			[]string{"id: must be a string", "customer: must be a string", "element: must be a string", "quantity: decimal",
				"time: RFC 3339", "contract: must be a string", "attributes: must be a JSON object"}},
		{"type error, unknown field and missing field", `{"id":1,"customer":"c","element":"e","qty":2,"time":"2026-11-01T00:00:00Z"}`,
			[]string{"id: must be a string", "qty: unknown field", "quantity: required"}},
		{"type error and invalid value", `{"id":"1","customer":"c","element":"a b","quantity":-1,"time":"2026-11-01T00:00:00Z","contract":7}`,
			[]string{"element: must be 1-64", "quantity: negative", "contract: must be a string"}},
		{"attribute value not a string", `{"id":"1","customer":2,"element":"e","quantity":1,"time":"2026-11-01T00:00:00Z","attributes":{"region":"jp","tier":3}}`,
			[]string{"customer: must be a string", "attributes.tier: must be a string"}},
		{"null where a string is required", `{"id":null,"customer":5,"element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`,
			[]string{"id: required", "customer: must be a string"}},
		{"keys match case-insensitively as on the fast path", `{"ID":"1","Customer":5,"element":"e","quantity":1,"time":"2026-11-01T00:00:00Z"}`,
			[]string{"customer: must be a string"}},
		{"not an object", `[1]`, []string{": must be a JSON object"}},
		{"malformed", `{"id":1,`, []string{": malformed JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parseEvent(json.RawMessage(tt.in), "acme", testNow, DefaultLimits)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field+": "+e.Reason)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("errors %q, want %d: %q", got, len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				field, reason, _ := strings.Cut(w, ": ")
				n := 0
				for _, e := range errs {
					if e.Field == field && strings.Contains(e.Reason, reason) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("errors %q: want exactly one %q", got, w)
				}
			}
		})
	}
}
