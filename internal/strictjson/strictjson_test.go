package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

type validity struct {
	From time.Time  `json:"valid_from"`
	To   *time.Time `json:"valid_to,omitempty"`
}

type tier struct {
	UpTo  *decimal.Decimal `json:"up_to,omitempty"`
	Price decimal.Decimal  `json:"unit_price"`
}

type version struct {
	validity
	Model string `json:"model"`
	Tiers []tier `json:"tiers"`
}

type doc struct {
	Code     string            `json:"code"`
	Day      int               `json:"closing_day"`
	On       bool              `json:"on,omitempty"`
	Attrs    map[string]string `json:"attributes,omitempty"`
	Versions []version         `json:"versions"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Hidden   string            `json:"-"`
	Untagged string
}

func TestDecodeNamesEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "path: reason substring", in document order
	}{
		{"wrong types at the top", `{"code":5,"closing_day":"15","on":"yes"}`,
			[]string{"code: wrong type: must be a string, got 5", `closing_day: wrong type: must be a whole number, got "15"`, `on: wrong type: must be true or false`}},
		{"not a whole number", `{"closing_day":1.5}`, []string{"closing_day: wrong type: must be a whole number, got 1.5"}},
		{"unknown fields, nested, with the known ones", `{"code":"a","colour":"red","versions":[{"valid_from":"2026-01-01T00:00:00Z","tiers":[{"unit_price":1},{"price":2}]}]}`,
			[]string{"colour: unknown field (the fields here: code, closing_day, on, attributes, versions, raw, Untagged)",
				"versions[0].tiers[1].price: unknown field (the fields here: up_to, unit_price)"}},
		{"a date where an instant is wanted", `{"versions":[{"valid_from":"2026-04-01"}]}`,
			[]string{"versions[0].valid_from: must be an RFC 3339 timestamp with a time of day and a UTC offset, e.g. 2026-04-01T00:00:00+09:00 (midnight in Japan) or 2026-04-01T00:00:00Z (midnight UTC), not the date 2026-04-01 alone"}},
		{"a time without an offset", `{"versions":[{"valid_from":"2026-04-01T00:00:00"}]}`,
			[]string{`versions[0].valid_from: must be an RFC 3339 timestamp with a time of day and a UTC offset, e.g. 2026-04-01T00:00:00+09:00, got "2026-04-01T00:00:00"`}},
		{"a number where a time is wanted", `{"versions":[{"valid_from":"2026-01-01T00:00:00Z","valid_to":7}]}`,
			[]string{"versions[0].valid_to: wrong type: must be an RFC 3339 timestamp"}},
		{"decimals", `{"versions":[{"tiers":[{"up_to":"ten","unit_price":true}]}]}`,
			[]string{`versions[0].tiers[0].up_to: must be a decimal number, e.g. 12.5 or "12.5", got "ten"`,
				"versions[0].tiers[0].unit_price: wrong type: must be a decimal number"}},
		{"containers of the wrong kind", `{"versions":{"a":1},"attributes":[1]}`,
			[]string{"versions: wrong type: must be a JSON array, got an object", "attributes: wrong type: must be a JSON object, got an array"}},
		{"map values", `{"attributes":{"ok":"x","n":3}}`, []string{"attributes.n: wrong type: must be a string, got 3"}},
		{"an element of the wrong kind", `{"versions":[3,{"model":4}]}`,
			[]string{"versions[0]: wrong type: must be a JSON object, got 3", "versions[1].model: wrong type: must be a string"}},
		{"escapes and brackets inside strings", `{"code":"}{\"][","attr\u0069butes":{"a\"b]":"x]}","n":3},"colour":"]"}`,
			[]string{`attributes.n: wrong type: must be a string, got 3`, "colour: unknown field"}},
		{"the document of the wrong kind", `[{"code":"a"}]`, []string{": wrong type: must be a JSON object, got an array"}},
		{"a hidden field is unknown", `{"Hidden":"x"}`, []string{"Hidden: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tt.in), &d)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode = %v, want an *Error", err)
			}
			if len(e.Problems) != len(tt.want) {
				t.Fatalf("problems %q, want %q", e.Problems, tt.want)
			}
			for i, w := range tt.want {
				path, reason, _ := strings.Cut(w, ": ")
				if p := e.Problems[i]; p.Path != path || !strings.Contains(p.Reason, reason) {
					t.Errorf("problem %d = %q: %q, want %q", i, p.Path, p.Reason, w)
				}
			}
		})
	}
}

// TestDecodeKeepsWhatIsValid: the parts that decode are set, so that the
// caller can check them too.
func TestDecodeKeepsWhatIsValid(t *testing.T) {
	var d doc
	d.Code = "left over"
	err := Decode([]byte(`{"closing_day":"x","attributes":{"a":"1","b":2},"versions":[{"valid_from":"2026-01-01T00:00:00Z","model":"m","tiers":[{"unit_price":"0.1"},{"unit_price":"?"}]}],"raw":{"any":[1]},"UNTAGGED":"u"}`), &d)
	if err == nil {
		t.Fatal("accepted")
	}
	want := doc{Attrs: map[string]string{"a": "1"}, Raw: json.RawMessage(`{"any":[1]}`), Untagged: "u", Versions: []version{{
		validity: validity{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, Model: "m",
		Tiers: []tier{{Price: decimal.RequireFromString("0.1")}, {}}}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", d, want)
	}
}

// TestDecodeAgreesWithEncodingJSON: what encoding/json accepts is decoded
// the same, and what it refuses is refused; syntax errors are its own.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"code":"a","closing_day":3,"versions":[{"valid_from":"2026-01-01T00:00:00+09:00","valid_to":null,"tiers":[{"up_to":"10","unit_price":0.5}]}]}`,
		`{"CODE":"case-insensitive","attributes":null,"versions":null}`,
		`null`,
		` { "code" : "}{\"][" , "attr\u0069butes" : { "a\"b]" : "x]}" } ,"versions":[ {"tiers":[ ]} , {} ] } `,
	} {
		var got, want doc
		if err := Decode([]byte(in), &got); err != nil {
			t.Errorf("%s: %v", in, err)
		}
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", in, got, want)
		}
	}
	for _, in := range []string{`{"code":`, `{"code":"a",}`, ``, `{"code":"a"} x`, `{"code":"a"} {"code":"b"}`} {
		var d doc
		err := Decode([]byte(in), &d)
		var e *Error
		var se *json.SyntaxError
		if errors.As(err, &e) || !errors.As(err, &se) {
			t.Errorf("%q: %v (%T), want encoding/json's syntax error", in, err, err)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"versions[0].valid_from", "versions[0]", true},
		{"versions[0]", "versions", true},
		{"versions", "versions", true},
		{"anything", "", true},
		{"versions_b", "versions", false},
		{"versions", "versions[0]", false},
		{"attributes.region", "attributes", true},
	}
	for _, tt := range tests {
		if got := Within(tt.path, tt.prefix); got != tt.want {
			t.Errorf("Within(%q, %q) = %v", tt.path, tt.prefix, got)
		}
	}
}
