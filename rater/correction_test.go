package rater

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/schemas"
)

// A correction is the record's own line, priced the same way, negated for an
// invalidation and as it is for a cancellation, under an id of its own per
// action and generation.
func TestPriceCorrection(t *testing.T) {
	pl := testPriceList(t)
	at := time.Date(2026, 10, 31, 16, 30, 0, 0, time.UTC) // November in Tokyo
	tests := []struct {
		tenant, qty, action string
		gen                 uint64
		amount, quantity    string
	}{
		{"jp", "3", schemas.ActionInvalidate, 1, "-2", "-3"}, // 1.5 → 2, negated
		{"jp", "3", schemas.ActionCancel, 2, "2", "3"},
		{"jpdown", "3", schemas.ActionInvalidate, 3, "-1", "-3"}, // 1.5 → 1 (down): the charged amount, not −1.5 rounded
		{"us", "1", schemas.ActionInvalidate, 1, "-0.02", "-1"},  // 0.0125 → 0.02 (up)
		{"jp", "0", schemas.ActionInvalidate, 1, "0", "0"},
	}
	for _, tt := range tests {
		ev := schemas.UsageEvent{Tenant: tt.tenant, ID: "e1", Customer: "c1", Element: "api",
			Quantity: decimal.RequireFromString(tt.qty), Time: at}
		orig := pl.Rate(&ev, at).Line
		o := listCorrections{pl}.PriceCorrection(&schemas.Correction{Action: tt.action, Generation: tt.gen, Event: ev}, at)
		if len(o.Lines) != 1 || o.Unpriced != nil {
			t.Fatalf("%+v: %+v", tt, o)
		}
		l := o.Lines[0]
		if !l.Amount.Equal(decimal.RequireFromString(tt.amount)) || !l.Event.Quantity.Equal(decimal.RequireFromString(tt.quantity)) {
			t.Errorf("%+v: amount %s quantity %s", tt, l.Amount, l.Event.Quantity)
		}
		if !l.Amount.Abs().Equal(orig.Amount) || l.Period != orig.Period || l.Currency != orig.Currency || l.Item != orig.Item {
			t.Errorf("%+v: correction %+v does not mirror the line %+v", tt, l, orig)
		}
		if l.LineID != schemas.CorrectionLineID(tt.tenant, "e1", "api", tt.action, tt.gen) || l.LineID == orig.LineID {
			t.Errorf("%+v: line id %s", tt, l.LineID)
		}
		if !ev.Quantity.Equal(decimal.RequireFromString(tt.qty)) {
			t.Errorf("the correction changed the caller's event")
		}
	}
	ev := schemas.UsageEvent{Tenant: "jp", ID: "e2", Customer: "c1", Element: "sms", Quantity: decimal.NewFromInt(1), Time: at}
	if o := (listCorrections{pl}).PriceCorrection(&schemas.Correction{Action: schemas.ActionInvalidate, Generation: 1, Event: ev}, at); len(o.Lines) != 0 || o.Unpriced == nil {
		t.Errorf("an unpriceable record: %+v, want no lines and the reason", o)
	}
}

type capture struct{ msgs []kafka.Message }

func (c *capture) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}

// The stage routes a correction by its header: lines to usage.rated, then
// its status change to usage.status, keyed like the record. A correction
// that cannot be applied is parked as malformed; a usage record that merely
// looks like a correction (no header) is priced as usage.
func TestStageHandlesCorrections(t *testing.T) {
	pl := testPriceList(t)
	out := &capture{}
	s := NewStage(pl, out, stream.NewMetrics(prometheus.NewRegistry()))
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	ev := schemas.UsageEvent{Tenant: "jp", ID: "e1", Customer: "c1", Element: "api", Quantity: decimal.NewFromInt(4), Time: at}
	val := func(v any) []byte { b, _ := json.Marshal(v); return b }
	good := schemas.Correction{Action: schemas.ActionInvalidate, Generation: 1, Event: ev, Reason: "r", Actor: "a", RequestedAt: at}
	bad := good
	bad.Action = schemas.ActionCancel // does not match generation 1
	unpriced := good
	unpriced.Event.Element = "sms"
	msgs := []kafka.Message{
		{Topic: schemas.TopicAccepted, Key: ev.PartitionKey(), Value: val(&good), Headers: schemas.CorrectionHeaders(), Offset: 1},
		{Topic: schemas.TopicAccepted, Key: ev.PartitionKey(), Value: val(&bad), Headers: schemas.CorrectionHeaders(), Offset: 2},
		{Topic: schemas.TopicAccepted, Key: ev.PartitionKey(), Value: val(&unpriced), Headers: schemas.CorrectionHeaders(), Offset: 3},
		{Topic: schemas.TopicAccepted, Key: ev.PartitionKey(), Value: val(&good), Offset: 4}, // no header: not a correction
	}
	if err := s.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, m := range out.msgs {
		topics = append(topics, m.Topic)
		if string(m.Key) != "jp/c1" {
			t.Errorf("output keyed %q, want the record's key", m.Key)
		}
	}
	want := []string{schemas.TopicRated, schemas.TopicStatus, schemas.TopicUnrated, schemas.TopicStatus, schemas.TopicUnrated}
	if len(topics) != len(want) {
		t.Fatalf("outputs %v, want %v", topics, want)
	}
	for i := range want {
		if topics[i] != want[i] {
			t.Fatalf("outputs %v, want %v", topics, want)
		}
	}
	var l schemas.RatedLine
	var st, st2 schemas.StatusChange
	var u schemas.Unrated
	_ = schemas.UnmarshalRatedLine(out.msgs[0].Value, &l)
	_ = json.Unmarshal(out.msgs[1].Value, &st)
	_ = schemas.UnmarshalUnrated(out.msgs[2].Value, &u)
	_ = json.Unmarshal(out.msgs[3].Value, &st2)
	if !l.Amount.Equal(decimal.NewFromInt(-2)) || l.Period != "2026-11" {
		t.Errorf("correction line %+v", l)
	}
	if st.Generation != 1 || st.Status != schemas.StatusInvalid || !st.Priced || len(st.Lines) != 1 || st.Lines[0] != l.LineID || st.Reason != "r" || st.Actor != "a" {
		t.Errorf("status change %+v", st)
	}
	if u.ReasonCode != schemas.ReasonMalformed || u.Event.ID != "correction:0:2" {
		t.Errorf("invalid correction parked as %+v", u)
	}
	if st2.Priced || len(st2.Lines) != 0 || st2.Status != schemas.StatusInvalid {
		t.Errorf("unpriceable record's status change %+v", st2)
	}
}

// testPriceList is the price list of the rater's tests (the price list's own
// tests are in rater/pricelist).
func testPriceList(t *testing.T) *pricelist.List {
	t.Helper()
	pl, err := pricelist.New(pricelist.File{Tenants: map[string]pricelist.TenantFile{
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
