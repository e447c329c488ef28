package catalogstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// TestAddVersionNamesEveryProblem: a version body that does not decode is
// refused with every problem named by its path in the body.
func TestAddVersionNamesEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		body string
		want []string // "field: reason substring", in body order
	}{
		{"date-only start, bad price, unknown field", KindRateTable,
			`{"valid_from":"2026-04-01","model":"per_unit","unit_price":"x","price":1}`,
			[]string{"valid_from: RFC 3339 timestamp with a time of day and a UTC offset", "unit_price: decimal number", "price: unknown field"}},
		{"nested", KindRateTable,
			`{"valid_from":"2026-04-01T00:00:00+09:00","model":"graduated","tiers":[{"up_to":"10","unit_price":"1"},{"up_to":[],"unit_price":"2"}]}`,
			[]string{"tiers[1].up_to: wrong type: must be a decimal number"}},
		{"wrong types", KindFee,
			`{"valid_from":"2026-04-01T00:00:00Z","kind":1,"element":"e","rates":{"rate_table":"rt"},"split_by":"region"}`,
			[]string{"kind: wrong type: must be a string", "rates: wrong type: must be a JSON array", "split_by: wrong type: must be a JSON array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.kind.New()
			err := AddVersion(tt.kind, doc, []byte(tt.body))
			var de *catalog.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("AddVersion = %v, want a DecodeError", err)
			}
			if len(de.Fields) != len(tt.want) {
				t.Fatalf("problems %+v, want %q", de.Fields, tt.want)
			}
			for i, w := range tt.want {
				field, reason, _ := strings.Cut(w, ": ")
				if f := de.Fields[i]; f.Field != field || !strings.Contains(f.Reason, reason) {
					t.Errorf("problem %d = %s: %s, want %q", i, f.Field, f.Reason, w)
				}
			}
		})
	}
}

// TestAddVersionEndsTheOpenVersion: a valid version is added as before.
func TestAddVersionEndsTheOpenVersion(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rt := &catalog.RateTable{Code: "rt", Versions: []catalog.RateTableVersion{{Validity: catalog.Validity{ValidFrom: from}, Model: catalog.ModelPerUnit}}}
	if err := AddVersion(KindRateTable, rt, []byte(`{"valid_from":"2026-04-01T00:00:00+09:00","model":"per_unit","unit_price":"0.5"}`)); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 31, 15, 0, 0, 0, time.UTC)
	if len(rt.Versions) != 2 || rt.Versions[0].ValidTo == nil || !rt.Versions[0].ValidTo.Equal(start) || !rt.Versions[1].ValidFrom.Equal(start) {
		t.Fatalf("versions %+v", rt.Versions)
	}
}
