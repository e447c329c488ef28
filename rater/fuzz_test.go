package rater

import (
	"encoding/json"
	"testing"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
)

// FuzzDecode reads arbitrary usage.accepted messages as the rater does:
// usage records, corrections (kakin-kind: correction) and re-rate requests
// (kakin-kind: rerate). Each is refused with an error or decoded to a value
// that is complete (a correction valid, a request with tenant and customer)
// and encodes to JSON that decodes to the same JSON again; a request's
// period, when it parses, is written back as it was given.
func FuzzDecode(f *testing.F) {
	ev := `{"tenant":"acme","id":"e1","customer":"c1","element":"api_calls","quantity":"2.5","time":"2026-11-01T10:00:00Z","received_at":"2026-11-02T00:00:00Z"}`
	for _, s := range []struct {
		kind, value string
	}{
		{"", ev},
		{"", `{"tenant":"acme","quantity":1e400}`},
		{schemas.KindCorrection, `{"action":"invalidate","generation":1,"event":` + ev + `,"reason":"typo","actor":"kc_a","requested_at":"2026-11-03T00:00:00Z"}`},
		{schemas.KindCorrection, `{"action":"cancel","generation":1,"event":` + ev + `}`},
		{schemas.KindCorrection, `{"action":"cancel","generation":18446744073709551616,"event":` + ev + `}`},
		{schemas.KindRerate, `{"tenant":"acme","customer":"c1","period":"2026-11","job":"j","actor":"a","requested_at":"2026-11-03T00:00:00Z"}`},
		{schemas.KindRerate, `{"tenant":"acme","customer":"c1","period":"2026-13"}`},
		{schemas.KindRerate, `{"tenant":"acme"}`},
		{"other", `null`},
	} {
		f.Add(s.kind, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, kind string, value []byte) {
		m := stream.Message{Value: value}
		if kind != "" {
			m.Headers = []stream.Header{{Key: schemas.KindHeader, Value: []byte(kind)}}
		}
		if schemas.HeaderKind(m.Headers) == schemas.KindRerate {
			r, err := decodeRerate(value)
			if err != nil {
				return
			}
			if r.Tenant == "" || r.Customer == "" {
				t.Fatalf("%q: request %+v without tenant or customer", value, r)
			}
			var again schemas.Rerate
			stable(t, value, r, &again)
			if p, err := pricing.ParsePeriod(r.Period); err == nil && p.String() != r.Period {
				t.Fatalf("period %q parses as %s", r.Period, p)
			}
			return
		}
		d, bad := decode(&m)
		switch {
		case bad != nil:
			if d.ev != nil || d.corr != nil {
				t.Fatalf("%q: refused (%v) with a value", value, bad)
			}
		case d.corr != nil:
			if err := d.corr.Validate(); err != nil || d.ev != &d.corr.Event {
				t.Fatalf("%q: correction %+v: %v", value, d.corr, err)
			}
			var again schemas.Correction
			stable(t, value, *d.corr, &again)
		case d.ev != nil:
			var again schemas.UsageEvent
			stable(t, value, *d.ev, &again)
		default:
			t.Fatalf("%q: neither refused nor decoded", value)
		}
	})
}

// stable fails unless v encodes to JSON that decodes (into again) to a
// value encoding to the same JSON.
func stable[T any](t *testing.T, value []byte, v T, again *T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%q: decoded %+v does not encode: %v", value, v, err)
	}
	if err := json.Unmarshal(b, again); err != nil {
		t.Fatalf("%q: its encoding %s does not decode: %v", value, b, err)
	}
	if b2, _ := json.Marshal(*again); string(b2) != string(b) {
		t.Fatalf("%q: encodes to %s, then to %s", value, b, b2)
	}
}
