package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example files of deploy/demo (the README shows them).
func rateExampleFiles(t *testing.T) (string, string) {
	t.Helper()
	return "../../deploy/demo/rate-example.yaml", "../../deploy/demo/rate-example.ndjson"
}

func TestRateCommandJSON(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	var out bytes.Buffer
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--format", "json", "--allow-unrated"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep rateReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	totals := map[string]totalRow{}
	for _, tr := range rep.Totals {
		totals[tr.Customer+"/"+tr.Period] = tr
	}
	// c1, March: 120 calls = 100 × 1 + 20 × 0.5 + flat 10 = 120 (the repeated e2
	// is priced once); base fee 3100 × 21/31 days = 2100.
	// c1, April (00:30 in Tokyo): 5 calls = 5; base 3100.
	// c2 (New York, USD, rounding up): 31 March 23:00 local → March: 100 × 1 +
	// 0.001 × 0.5 + 10 = 110.0005 → 110.01.
	want := map[string][3]string{
		"c1/2026-03": {"120", "2100", "2220"},
		"c1/2026-04": {"5", "3100", "3105"},
		"c2/2026-03": {"110.01", "0.00", "110.01"},
	}
	if len(totals) != len(want) {
		t.Fatalf("totals %+v", rep.Totals)
	}
	for k, w := range want {
		got := totals[k]
		if got.Metered != w[0] || got.Fixed != w[1] || got.Total != w[2] {
			t.Errorf("%s: metered %s fixed %s total %s, want %v", k, got.Metered, got.Fixed, got.Total, w)
		}
	}
	if len(rep.Unrated) != 1 || rep.Unrated[0].ID != "e4" || rep.Unrated[0].ReasonCode != "unknown_customer" || rep.Unrated[0].Line != 6 {
		t.Errorf("unrated %+v", rep.Unrated)
	}
	if len(rep.Rejected) != 1 || rep.Rejected[0].Line != 7 || rep.Rejected[0].Errors[0].Field != "quantity" {
		t.Errorf("rejected %+v", rep.Rejected)
	}
	if len(rep.Duplicates) != 1 || rep.Duplicates[0].Line != 3 || rep.Duplicates[0].FirstLine != 2 {
		t.Errorf("duplicates %+v", rep.Duplicates)
	}
	var march *chargeRow
	for i, c := range rep.Charges {
		if c.Customer == "c1" && c.Period == "2026-03" {
			march = &rep.Charges[i]
		}
	}
	if march == nil || march.Records != 2 || march.Quantity != "120" || march.Amount != "120" || march.RateTable != "api-grad" {
		t.Errorf("March charge %+v", march)
	}
}

func TestRateCommandPeriodAndTable(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	var out bytes.Buffer
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--period", "2026-04", "--allow-unrated"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "3105") || strings.Contains(text, "2220") || strings.Contains(text, "2026-03") {
		t.Errorf("--period 2026-04 output:\n%s", text)
	}
	if !strings.Contains(text, "rejected: line 7: quantity") || !strings.Contains(text, "duplicate: line 3") {
		t.Errorf("table lacks the rejected and duplicate records:\n%s", text)
	}
}

func TestRateCommandRefusesBadInput(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "usage.csv")
	os.WriteFile(csv, []byte("id,customer\n"), 0o600)
	if err := runRate([]string{"--catalog", cat, "--usage", csv}, new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "required column element is missing") {
		t.Errorf("CSV without the element column: err = %v", err)
	}
	text, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(string(text), "up_to: 100", "up_to: -100", 1)), 0o600)
	if err := runRate([]string{"--catalog", bad, "--usage", usage}, new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "tiers[0].up_to") {
		t.Errorf("invalid catalogue: err = %v", err)
	}
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--period", "March"}, new(bytes.Buffer)); err == nil {
		t.Error("bad --period accepted")
	}
	if err := runRate([]string{"--catalog", cat}, new(bytes.Buffer)); err == nil {
		t.Error("missing --usage accepted")
	}
}

// A CSV usage file is read by the import reader and prices exactly like the
// same records as NDJSON.
func TestRateCommandCSV(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	lines, err := os.ReadFile(usage)
	if err != nil {
		t.Fatal(err)
	}
	csv := "id,customer,element,quantity,time,contract\n"
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		csv += strings.Join([]string{str(r["id"]), str(r["customer"]), str(r["element"]), str(r["quantity"]), str(r["time"]), str(r["contract"])}, ",") + "\n"
	}
	path := filepath.Join(t.TempDir(), "usage.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(usage string) rateReport {
		var out bytes.Buffer
		if err := runRate([]string{"--catalog", cat, "--usage", usage, "--format", "json", "--allow-unrated"}, &out); err != nil {
			t.Fatal(err)
		}
		var rep rateReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	fromCSV, fromNDJSON := run(path), run(usage)
	if len(fromCSV.Totals) == 0 {
		t.Fatal("no totals from CSV")
	}
	a, _ := json.Marshal(fromCSV.Totals)
	b, _ := json.Marshal(fromNDJSON.Totals)
	if !bytes.Equal(a, b) {
		t.Fatalf("CSV totals %s\nNDJSON totals %s", a, b)
	}
	if len(fromCSV.Duplicates) != 1 || fromCSV.Duplicates[0].Line != 4 {
		t.Errorf("CSV duplicates %+v (line numbers count the header)", fromCSV.Duplicates)
	}
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// Issue 19 (what-if CLI): a non-zero exit when a record was rejected or not
// priced, after the report; --allow-unrated exits 0.
func TestRateExitStatus(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	var out bytes.Buffer
	err := runRate([]string{"--catalog", cat, "--usage", usage, "--format", "json"}, &out)
	if !errors.Is(err, errRateIncomplete) || !strings.Contains(err.Error(), "1 record(s) rejected, 1 not priced") {
		t.Fatalf("err = %v, want errRateIncomplete with the counts", err)
	}
	if !strings.Contains(out.String(), `"totals"`) {
		t.Errorf("the report was not printed before the error:\n%s", out.String())
	}
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--allow-unrated"}, new(bytes.Buffer)); err != nil {
		t.Errorf("--allow-unrated: %v", err)
	}
}

// Issue 19 (what-if CLI): per-record lines with the running state after each
// record, in JSON and in the table.
func TestRateLines(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	var out bytes.Buffer
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--format", "json", "--lines", "--allow-unrated"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep rateReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// c1's March charge: e1 (60 calls) then e2 (60 more: 100 × 1 + 20 × 0.5
	// + flat 10 = 120).
	var got []string
	for _, l := range rep.Lines {
		if l.Customer == "c1" && l.Period == "2026-03" {
			got = append(got, fmt.Sprintf("%d %s %s %d %s %s", l.Line, l.ID, l.Amount, l.Records, l.Quantity, l.Total))
		}
	}
	want := []string{"1 e1 60 1 60 60", "2 e2 60 2 120 120"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %v, want %v", got, want)
	}
	out.Reset()
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--lines", "--allow-unrated"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "QUANTITY AFTER") || !strings.Contains(out.String(), "e2") {
		t.Errorf("table without the lines:\n%s", out.String())
	}
}

// Issue 19 (what-if CLI): --from/--to shows the fixed fees of every period of
// the range, also those without usage.
func TestRatePeriodRange(t *testing.T) {
	cat, usage := rateExampleFiles(t)
	var out bytes.Buffer
	if err := runRate([]string{"--catalog", cat, "--usage", usage, "--format", "json", "--from", "2026-04", "--to", "2026-06", "--allow-unrated"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep rateReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tr := range rep.Totals {
		got[tr.Customer+"/"+tr.Period] = tr.Total
	}
	// c1: April 5 calls + base 3100; May and June (no usage): base 3100 each.
	want := map[string]string{"c1/2026-04": "3105", "c1/2026-05": "3100", "c1/2026-06": "3100"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("totals %v, want %s = %s", got, k, w)
		}
	}
	if _, ok := got["c1/2026-03"]; ok {
		t.Errorf("March is outside the range: %v", got)
	}
	for _, bad := range [][]string{{"--from", "2026-04"}, {"--from", "2026-05", "--to", "2026-04"}, {"--period", "2026-04", "--from", "2026-04", "--to", "2026-04"}} {
		args := append([]string{"--catalog", cat, "--usage", usage}, bad...)
		if err := runRate(args, new(bytes.Buffer)); err == nil || errors.Is(err, errRateIncomplete) {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
}
