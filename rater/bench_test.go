package rater

import (
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// BenchmarkRatePerUnit measures pricing one event at a per-unit price,
// including the line id and the period in the tenant's time zone.
func BenchmarkRatePerUnit(b *testing.B) {
	pl, err := NewPriceList(PriceListFile{Tenants: map[string]TenantPriceFile{
		"jp": {Currency: "JPY", Rounding: "half_up", TimeZone: "Asia/Tokyo", AnyCustomer: true, Prices: map[string]string{"api": "0.037"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	ev := schemas.UsageEvent{Tenant: "jp", ID: "evt-00000001", Customer: "c1", Element: "api",
		Quantity: decimal.RequireFromString("1234.5"), Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if o := pl.Rate(&ev, now); o.Line == nil {
			b.Fatal("unrated")
		}
	}
}
