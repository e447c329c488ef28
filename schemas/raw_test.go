package schemas

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

func TestRawHeaders(t *testing.T) {
	e := UsageEvent{Tenant: "acme", ID: "evt-1", Customer: "c1", Element: "api_calls",
		Quantity: decimal.RequireFromString("2.5"), Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	hs := RawHeaders(&e)
	tenant, id, sum, ok := ParseRawHeaders(hs)
	if !ok || tenant != "acme" || id != "evt-1" || sum != PayloadHash(&e) {
		t.Fatalf("round trip: %q %q %x %v, want acme evt-1 %x true", tenant, id, sum, ok, PayloadHash(&e))
	}
	without := func(key string) []kafka.Header {
		var out []kafka.Header
		for _, h := range hs {
			if h.Key != key {
				out = append(out, h)
			}
		}
		return out
	}
	with := func(key, value string) []kafka.Header {
		return append(without(key), kafka.Header{Key: key, Value: []byte(value)})
	}
	for name, bad := range map[string][]kafka.Header{
		"none":            nil,
		"no tenant":       without(HeaderTenant),
		"no id":           without(HeaderEventID),
		"no hash":         without(HeaderPayloadHash),
		"empty tenant":    with(HeaderTenant, ""),
		"empty id":        with(HeaderEventID, ""),
		"short hash":      with(HeaderPayloadHash, "abc"),
		"hash not hex":    with(HeaderPayloadHash, "zz00000000000000"),
		"correction kind": {{Key: KindHeader, Value: []byte(KindCorrection)}},
	} {
		if _, _, _, ok := ParseRawHeaders(bad); ok {
			t.Errorf("%s: parsed as valid", name)
		}
	}
}
