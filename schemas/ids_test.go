package schemas

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestLineIDDeterministicAndDistinct(t *testing.T) {
	a := LineID("acme", "e1", "api_calls")
	if a != LineID("acme", "e1", "api_calls") {
		t.Fatal("LineID is not deterministic")
	}
	if len(a) != 32 {
		t.Fatalf("LineID length %d, want 32 hex chars", len(a))
	}
	others := []string{
		LineID("acme2", "e1", "api_calls"),
		LineID("acme", "e2", "api_calls"),
		LineID("acme", "e1", "storage"),
		LineID("acm", "ee1", "api_calls"), // boundaries are not ambiguous
	}
	for _, o := range others {
		if o == a {
			t.Errorf("LineID collision: %s", o)
		}
	}
}

func TestPayloadHash(t *testing.T) {
	base := UsageEvent{Tenant: "t", ID: "1", Customer: "c", Element: "e",
		Quantity: decimal.RequireFromString("1.50"), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Attributes: map[string]string{"a": "1", "b": "2"}}
	same := base
	same.Quantity = decimal.RequireFromString("1.5") // same value, other scale
	same.ReceivedAt = time.Now()                     // ingest metadata is not payload
	same.Attributes = map[string]string{"b": "2", "a": "1"}
	if PayloadHash(&base) != PayloadHash(&same) {
		t.Error("equal payloads hash differently")
	}
	changes := []func(e *UsageEvent){
		func(e *UsageEvent) { e.Customer = "d" },
		func(e *UsageEvent) { e.Element = "f" },
		func(e *UsageEvent) { e.Quantity = decimal.RequireFromString("1.51") },
		func(e *UsageEvent) { e.Time = e.Time.Add(time.Nanosecond) },
		func(e *UsageEvent) { e.Contract = "k" },
		func(e *UsageEvent) { e.Attributes = map[string]string{"a": "1", "b": "3"} },
	}
	for i, change := range changes {
		e := base
		change(&e)
		if PayloadHash(&e) == PayloadHash(&base) {
			t.Errorf("change %d did not change the payload hash", i)
		}
	}
}

func TestValidTenant(t *testing.T) {
	for s, want := range map[string]bool{"acme": true, "a-1": true, "": false, "Acme": false, "a/b": false, "a:b": false} {
		if got := ValidTenant(s); got != want {
			t.Errorf("ValidTenant(%q) = %v, want %v", s, got, want)
		}
	}
}
