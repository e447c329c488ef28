package catalog

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("catalogue.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("catalogue.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// instance reads a YAML or JSON catalogue file as the JSON value the schema
// describes (YAMLToJSON is what Decode reads too).
func instance(t *testing.T, yamlText string) any {
	t.Helper()
	js, err := YAMLToJSON([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDemoCatalogueMatchesTheSchema(t *testing.T) {
	s := compileSchema(t)
	b, err := os.ReadFile("../deploy/demo/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(instance(t, string(b))); err != nil {
		t.Fatalf("deploy/demo/catalogue.yaml does not match the schema: %v", err)
	}
	// What the API and `kakin catalog export` write (decimals as strings,
	// every field Go emits) matches it too.
	c, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(instance(t, string(js))); err != nil {
		t.Fatalf("the demo catalogue as Go writes it does not match the schema: %v", err)
	}
}

func TestSchemaRejectsInvalidFiles(t *testing.T) {
	s := compileSchema(t)
	tests := []struct{ name, yaml, want string }{
		{"unknown top-level key", "planz: []\n", "planz"},
		{"unknown field", "plans:\n  - code: p\n    colour: red\n    versions: [{valid_from: 2026-01-01T00:00:00Z, type: fixed, currency: JPY, fees: [f]}]\n", "colour"},
		{"bad enum", "elements:\n  - code: e\n    versions: [{valid_from: 2026-01-01T00:00:00Z, unit: s, aggregation: median}]\n", "aggregation"},
		{"negative price", "rate_tables:\n  - code: r\n    versions: [{valid_from: 2026-01-01T00:00:00Z, model: per_unit, unit_price: -1}]\n", "unit_price"},
		{"missing valid_from", "fees:\n  - code: f\n    versions: [{kind: fixed, amount: 1}]\n", "valid_from"},
		{"not a timestamp", "fees:\n  - code: f\n    versions: [{valid_from: next monday, kind: fixed, amount: 1}]\n", "valid_from"},
		{"bad code", "services:\n  - code: 'a b'\n    versions: [{valid_from: 2026-01-01T00:00:00Z}]\n", "code"},
		{"decimal in exponent form", "fees:\n  - code: f\n    versions: [{valid_from: 2026-01-01T00:00:00Z, kind: fixed, amount: '1e3'}]\n", "amount"},
		{"no versions", "plans:\n  - code: p\n    versions: []\n", "versions"},
		{"bad tier_bounds", "rate_tables:\n  - code: r\n    versions: [{valid_from: 2026-01-01T00:00:00Z, model: volume, tier_bounds: lower, tiers: [{unit_price: 1}]}]\n", "tier_bounds"},
		{"above_last_tier without a price", "rate_tables:\n  - code: r\n    versions: [{valid_from: 2026-01-01T00:00:00Z, model: volume, tiers: [{up_to: 1, unit_price: 1}], above_last_tier: {}}]\n", "unit_price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(instance(t, tt.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q: %v", tt.want, err)
			}
		})
	}
}
