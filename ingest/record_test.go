package ingest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// A record given as text fields (a CSV row of an import) gets exactly the
// verdict the same record gets as JSON on POST /v1/usage.
func TestValidateFieldsAgreesWithParseRecord(t *testing.T) {
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	ok := Fields{ID: "e-1", Customer: "c", Element: "api_calls", Quantity: "12.5", Time: "2026-11-23T09:00:00+09:00"}
	with := func(change func(f *Fields)) Fields { f := ok; change(&f); return f }
	cases := []Fields{
		ok,
		with(func(f *Fields) { f.Contract = "k-1"; f.Attributes = map[string]string{"region": "jp"} }),
		with(func(f *Fields) { f.ID = "" }),
		with(func(f *Fields) { f.Quantity = "" }),
		with(func(f *Fields) { f.Quantity = "-1" }),
		with(func(f *Fields) { f.Quantity = "1.0000000001" }),
		with(func(f *Fields) { f.Quantity = "lots" }),
		with(func(f *Fields) { f.Quantity = " 7 " }),
		with(func(f *Fields) { f.Element = "a b" }),
		with(func(f *Fields) { f.Time = "2026-11-23 01:00" }),
		with(func(f *Fields) { f.Time = "2026-09-01T00:00:00Z" }), // older than the window
		with(func(f *Fields) { f.Time = "2026-11-30T00:00:00Z" }), // too far ahead
		with(func(f *Fields) { f.Customer = "tab\there" }),
		with(func(f *Fields) { f.Attributes = map[string]string{"k": "bell\a"} }),
		{},
	}
	for i, f := range cases {
		obj := map[string]any{}
		for k, v := range map[string]string{"id": f.ID, "customer": f.Customer, "element": f.Element,
			"quantity": f.Quantity, "time": f.Time, "contract": f.Contract} {
			if v != "" {
				obj[k] = v
			}
		}
		if f.Attributes != nil {
			obj["attributes"] = f.Attributes
		}
		raw, _ := json.Marshal(obj)
		wantEv, wantErrs := ParseRecord(raw, "t", now, DefaultLimits)
		gotEv, gotErrs := ValidateFields(f, "t", now, DefaultLimits)
		if !reflect.DeepEqual(gotEv, wantEv) || fmt.Sprint(gotErrs) != fmt.Sprint(wantErrs) {
			t.Errorf("case %d %+v:\n fields: %+v %v\n json:   %+v %v", i, f, gotEv, gotErrs, wantEv, wantErrs)
		}
	}
	if _, errs := ValidateFields(ok, "t", now, DefaultLimits); len(errs) != 0 {
		t.Errorf("a valid record was rejected: %v", errs)
	}
}

func TestParseRecordIsTheHTTPParser(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	ev, errs := ParseRecord([]byte(`{"id":"a","customer":"c","element":"e","quantity":"1.5","time":"2020-01-01T00:00:00Z"}`), "t", now, Limits{})
	if len(errs) != 0 || ev.Tenant != "t" || !ev.Quantity.Equal(decimal.RequireFromString("1.5")) {
		t.Fatalf("ev %+v errs %v", ev, errs)
	}
	// Same validation as the endpoint: scale, and the age window when asked.
	if _, errs := ParseRecord([]byte(`{"id":"a","customer":"c","element":"e","quantity":"0.0000000001","time":"2026-11-01T00:00:00Z"}`), "t", now, Limits{}); len(errs) != 1 || errs[0].Field != "quantity" {
		t.Errorf("10 decimal places accepted: %v", errs)
	}
	if _, errs := ParseRecord([]byte(`{"id":"a","customer":"c","element":"e","quantity":1,"time":"2020-01-01T00:00:00Z"}`), "t", now, DefaultLimits); len(errs) != 1 || errs[0].Field != "time" {
		t.Errorf("old record accepted under DefaultLimits: %v", errs)
	}
}
