package pricelist

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kakin-dev/kakin/schemas"
)

func testPriceList(t *testing.T) *List {
	t.Helper()
	pl, err := New(File{Tenants: map[string]TenantFile{
		"jp": {Currency: "JPY", Rounding: "half_up", TimeZone: "Asia/Tokyo", Customers: []string{"c1"},
			Prices: map[string]string{"api": "0.5", "gb": "1.2345"}},
		"jpdown": {Currency: "JPY", Rounding: "down", TimeZone: "Asia/Tokyo", Customers: []string{"c1"},
			Prices: map[string]string{"api": "0.5"}},
		"us": {Currency: "USD", Rounding: "up", TimeZone: "America/New_York", Customers: []string{"c1"},
			Prices: map[string]string{"api": "0.0125"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func TestRate(t *testing.T) {
	pl := testPriceList(t)
	at := time.Date(2026, 10, 31, 16, 30, 0, 0, time.UTC) // 2026-11-01 01:30 in Tokyo, 12:30 Oct 31 in New York
	tests := []struct {
		tenant, element, qty string
		wantAmount, period   string
	}{
		{"jp", "api", "3", "2", "2026-11"},           // 1.5 → 2 (half up)
		{"jp", "api", "1", "1", "2026-11"},           // 0.5 → 1
		{"jpdown", "api", "3", "1", "2026-11"},       // 1.5 → 1 (down)
		{"jp", "gb", "10", "12", "2026-11"},          // 12.345 → 12
		{"jp", "api", "0", "0", "2026-11"},           // zero quantity
		{"us", "api", "1", "0.02", "2026-10"},        // 0.0125 → 0.02 (up), period in New York
		{"us", "api", "800", "10.00", "2026-10"},     // exact
		{"jp", "api", "0.000000001", "0", "2026-11"}, // tiny quantity rounds to nothing
	}
	for _, tt := range tests {
		ev := schemas.UsageEvent{Tenant: tt.tenant, ID: "e1", Customer: "c1", Element: tt.element,
			Quantity: decimal.RequireFromString(tt.qty), Time: at}
		o := pl.Rate(&ev, at)
		if o.Line == nil {
			t.Fatalf("%+v: unrated: %+v", tt, o.Unrated)
		}
		if !o.Line.Amount.Equal(decimal.RequireFromString(tt.wantAmount)) || o.Line.Period != tt.period {
			t.Errorf("%s %s×%s = %s in %s, want %s in %s", tt.tenant, tt.qty, tt.element, o.Line.Amount, o.Line.Period, tt.wantAmount, tt.period)
		}
		if o.Line.LineID != schemas.LineID(tt.tenant, "e1", tt.element) {
			t.Errorf("line id not derived from the event")
		}
		if !o.Line.UnitPriced || o.Line.UnitPrice.IsZero() {
			t.Errorf("%s %s: unit price %s (priced %v), want the price list's", tt.tenant, tt.element, o.Line.UnitPrice, o.Line.UnitPriced)
		}
	}
}

func TestRateUnrated(t *testing.T) {
	pl := testPriceList(t)
	tests := []struct{ tenant, customer, element, code string }{
		{"nope", "c1", "api", schemas.ReasonUnknownTenant},
		{"jp", "c9", "api", schemas.ReasonUnknownCustomer},
		{"jp", "c1", "sms", schemas.ReasonUnknownElement},
	}
	for _, tt := range tests {
		ev := schemas.UsageEvent{Tenant: tt.tenant, ID: "e", Customer: tt.customer, Element: tt.element, Quantity: decimal.NewFromInt(1)}
		o := pl.Rate(&ev, time.Now())
		if o.Line != nil || o.Unrated == nil || o.Unrated.ReasonCode != tt.code || o.Unrated.Reason == "" {
			t.Errorf("%+v: outcome %+v, want unrated %s", tt, o, tt.code)
		}
	}
}

func TestNewPriceListRejects(t *testing.T) {
	bad := []TenantFile{
		{Currency: "XXX", Rounding: "half_up", TimeZone: "UTC"},
		{Currency: "JPY", Rounding: "bankers", TimeZone: "UTC"},
		{Currency: "JPY", Rounding: "down", TimeZone: "Mars/Base"},
		{Currency: "JPY", Rounding: "down", TimeZone: "UTC", Prices: map[string]string{"a": "-1"}},
		{Currency: "JPY", Rounding: "down", TimeZone: "UTC", Prices: map[string]string{"a": "one"}},
	}
	for i, b := range bad {
		if _, err := New(File{Tenants: map[string]TenantFile{"t": b}}); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}

// A price list price must give lines the store can hold: below 10^10 per
// unit (catalog.MaxUnitPrice), so that it times any quantity ingest accepts
// (below 10^18) stays below the aggregator's 10^28.
func TestNewPriceListRejectsUnstorablePrices(t *testing.T) {
	tests := []struct {
		price string
		ok    bool
	}{
		{"99999999999999999999999999999999999999", false},
		{"10000000000", false},
		{"9999999999.999999999", true},
	}
	for _, tt := range tests {
		_, err := New(File{Tenants: map[string]TenantFile{"t": {Currency: "JPY", Rounding: "down", TimeZone: "UTC",
			Prices: map[string]string{"a": tt.price}}}})
		if (err == nil) != tt.ok {
			t.Errorf("price %s: err %v, want ok %v", tt.price, err, tt.ok)
		}
	}
}

// A line the store cannot hold is never emitted: the record is parked as
// unrated (amount_overflow) with the reason, rather than written as a line
// the aggregator would refuse (and retry for ever). The price list here
// bypasses New's bounds, as an older one could.
func TestRateParksAnUnstorableLine(t *testing.T) {
	pl := testPriceList(t)
	pl.tenants["jp"].prices["huge"] = decimal.RequireFromString("99999999999999999999999999999999999999")
	pl.tenants["jp"].prices["big"] = decimal.RequireFromString("1000000000000")
	tests := []struct {
		element, qty string
		overflow     bool
	}{
		{"huge", "1", true},                 // the price itself does not fit unit_price
		{"big", "999999999999999999", true}, // 10^12 × (10^18 − 1) ≥ 10^28
		{"big", "1000", false},              // 10^15 fits
		{"api", "999999999999999999.999999999", false},
	}
	for _, tt := range tests {
		ev := schemas.UsageEvent{Tenant: "jp", ID: "e", Customer: "c1", Element: tt.element, Quantity: decimal.RequireFromString(tt.qty),
			Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
		o := pl.Rate(&ev, ev.Time)
		switch {
		case tt.overflow && (o.Line != nil || o.Unrated == nil || o.Unrated.ReasonCode != schemas.ReasonOverflow || o.Unrated.Reason == ""):
			t.Errorf("%s × %s: %+v, want parked as %s", tt.qty, tt.element, o, schemas.ReasonOverflow)
		case !tt.overflow && o.Line == nil:
			t.Errorf("%s × %s: %+v, want a line", tt.qty, tt.element, o.Unrated)
		}
	}
}
