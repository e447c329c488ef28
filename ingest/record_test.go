package ingest

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

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
