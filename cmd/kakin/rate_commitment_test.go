package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 19 items 6 and 11 in `kakin rate`: a plan commitment's true-up line
// and a fee minimum of a period without records.
func TestRateCommitmentAndIdleMinimum(t *testing.T) {
	b, err := os.ReadFile("../../deploy/demo/rate-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat := strings.Replace(string(b),
		"fees: [api, base]}]",
		"fees: [api, base, storage], commitment: 5000, minimum_without_usage: true}]", 1)
	cat = strings.Replace(cat, "  - code: base\n", `  - code: storage
    name: Storage
    versions: [{valid_from: 2026-01-01T00:00:00+09:00, kind: metered, element: api_calls, rates: [{rate_table: api-grad, match: {kind: storage}}], minimum: 300}]
  - code: base
`, 1)
	// The storage fee is restricted to kind storage; the plan skips it for
	// other records.
	cat = strings.Replace(cat, "commitment: 5000,", "commitment: 5000, unmatched_rates: skip,", 1)
	dir := t.TempDir()
	catPath := filepath.Join(dir, "cat.yaml")
	if err := os.WriteFile(catPath, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	_, usage := rateExampleFiles(t)
	var out bytes.Buffer
	if err := runRate([]string{"--catalog", catPath, "--usage", usage, "--format", "json", "--period", "2026-03", "--allow-unrated"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep rateReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// c1, March (k1 from 11 March: 21 of 31 days): api 120, base 2100, the
	// storage minimum 300 without records; commitment 5000 × 21/31 =
	// 3387.0967… → 3387, minus 2520 used = 867.
	got := map[string]string{}
	for _, f := range rep.Fixed {
		if f.Customer == "c1" {
			got[f.Fee] = f.Amount
		}
	}
	want := map[string]string{"base": "2100", "storage (minimum)": "300", "(commitment true-up)": "867"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("fixed lines %v, want %s = %s", got, k, w)
		}
	}
	for _, tr := range rep.Totals {
		if tr.Customer == "c1" && tr.Period == "2026-03" && tr.Total != "3387" {
			t.Errorf("c1 March total %s, want 3387 (the commitment)", tr.Total)
		}
	}
}
