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

func TestRawPositionHeaders(t *testing.T) {
	round := []struct {
		partition int
		offset    int64
	}{{0, 0}, {3, 100}, {65535, 1<<63 - 1}}
	for _, tt := range round {
		hs := RawPositionHeaders(CorrectionHeaders(), tt.partition, tt.offset)
		p, o, found, err := ParseRawPosition(hs)
		if err != nil || !found || p != tt.partition || o != tt.offset {
			t.Errorf("round trip of %d/%d: %d/%d found=%v err=%v", tt.partition, tt.offset, p, o, found, err)
		}
	}
	if _, _, found, err := ParseRawPosition(RawHeaders(&UsageEvent{Tenant: "acme", ID: "e"})); found || err != nil {
		t.Errorf("headers without a raw position: found=%v err=%v, want neither", found, err)
	}
	h := func(kv ...string) []kafka.Header {
		var out []kafka.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	for name, bad := range map[string][]kafka.Header{
		"partition only":      h(HeaderRawPartition, "1"),
		"offset only":         h(HeaderRawOffset, "1"),
		"partition too large": h(HeaderRawPartition, "65536", HeaderRawOffset, "1"),
		"negative offset":     h(HeaderRawPartition, "1", HeaderRawOffset, "-1"),
		"signed partition":    h(HeaderRawPartition, "+1", HeaderRawOffset, "1"),
		"empty offset":        h(HeaderRawPartition, "1", HeaderRawOffset, ""),
		"offset not a number": h(HeaderRawPartition, "1", HeaderRawOffset, "1e3"),
		"offset beyond int64": h(HeaderRawPartition, "1", HeaderRawOffset, "9223372036854775808"),
	} {
		if _, _, found, err := ParseRawPosition(bad); !found || err == nil {
			t.Errorf("%s: found=%v err=%v, want found with an error", name, found, err)
		}
	}
}
