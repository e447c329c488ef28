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

func TestCorrectionLineID(t *testing.T) {
	a := CorrectionLineID("acme", "e1", "api_calls", ActionInvalidate, 1)
	if a != CorrectionLineID("acme", "e1", "api_calls", ActionInvalidate, 1) {
		t.Fatal("CorrectionLineID is not deterministic")
	}
	if len(a) != 32 {
		t.Fatalf("length %d, want 32 hex chars", len(a))
	}
	others := []string{
		LineID("acme", "e1", "api_calls"),
		CorrectionLineID("acme", "e1", "api_calls", ActionInvalidate, 3),
		CorrectionLineID("acme", "e1", "api_calls", ActionCancel, 1),
		CorrectionLineID("acme", "e1", "storage", ActionInvalidate, 1),
		CorrectionLineID("acme", "e2", "api_calls", ActionInvalidate, 1),
		CorrectionLineID("beta", "e1", "api_calls", ActionInvalidate, 1),
	}
	for i, o := range others {
		if o == a {
			t.Errorf("case %d collides with %s", i, a)
		}
	}
}

func TestGenerationParity(t *testing.T) {
	for g, want := range map[uint64][2]string{
		1: {ActionInvalidate, StatusInvalid}, 2: {ActionCancel, StatusValid},
		3: {ActionInvalidate, StatusInvalid}, 10: {ActionCancel, StatusValid},
	} {
		if a, s := ActionForGeneration(g), StatusForGeneration(g); a != want[0] || s != want[1] {
			t.Errorf("generation %d: %s/%s, want %v", g, a, s, want)
		}
	}
	if StatusForGeneration(0) != StatusValid {
		t.Error("generation 0 is not valid")
	}
	ev := UsageEvent{Tenant: "t", ID: "e", Customer: "c"}
	for _, tt := range []struct {
		c  Correction
		ok bool
	}{
		{Correction{Action: ActionInvalidate, Generation: 1, Event: ev}, true},
		{Correction{Action: ActionCancel, Generation: 2, Event: ev}, true},
		{Correction{Action: ActionCancel, Generation: 1, Event: ev}, false},
		{Correction{Action: ActionInvalidate, Generation: 0, Event: ev}, false},
		{Correction{Action: "delete", Generation: 1, Event: ev}, false},
		{Correction{Action: ActionInvalidate, Generation: 1}, false},
	} {
		if err := tt.c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v", tt.c, err)
		}
	}
}
