package rater

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/runstate"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// memoryHistory is the aggregator's side of a re-rate, held in memory: the
// stored records and the period's current lines.
type memoryHistory struct {
	events []schemas.UsageEvent
	lines  []schemas.RatedLine
}

func (h *memoryHistory) History(_ context.Context, tenant, customer string, from, to time.Time, _ int, _ int64) ([]schemas.UsageEvent, error) {
	var out []schemas.UsageEvent
	for _, e := range h.events {
		if e.Tenant == tenant && e.Customer == customer && !e.Time.Before(from) && e.Time.Before(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (h *memoryHistory) PeriodLines(context.Context, string, string, string) ([]schemas.RatedLine, error) {
	return h.lines, nil
}

type storedAlready struct{ asked int }

func (s *storedAlready) WaitCaughtUp(context.Context, time.Duration) error {
	s.asked++
	return nil
}

// A retroactive price change re-rated: every line of the period is replaced
// by its recomputed amount, a line the recomputation does not produce is
// zeroed, the running state continues from the recomputation, and a
// redelivered request changes nothing.
func TestRerate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	tenant := "rerate-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
	src.set(t, tenant, graduatedCatalogue)
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	out := &capture{}
	hist := &memoryHistory{}
	stored := &storedAlready{}
	s := NewStage(&pricelist.List{}, out, stream.NewMetrics(prometheus.NewRegistry())).
		WithEngines(engines, runstate.New(rdb, time.Hour)).WithRerate(hist, stored, time.Second)

	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	ev := func(id string, q int64) schemas.UsageEvent {
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c1", Element: "calls",
			Quantity: decimal.NewFromInt(q), Time: at, ReceivedAt: at}
	}
	e1, e2 := ev("e1", 60), ev("e2", 60)
	if err := s.HandleBatch(ctx, []kafka.Message{usageMsg(t, 10, e1), usageMsg(t, 11, e2)}); err != nil {
		t.Fatal(err)
	}
	streamed := ratedLines(t, out.msgs)
	if len(streamed) != 2 || !streamed[1].Amount.Equal(decimal.NewFromInt(50)) {
		t.Fatalf("streamed %+v", streamed)
	}
	// What the aggregator stored, plus a correction line of an earlier
	// invalidation the recomputation will not produce.
	stale := streamed[0]
	stale.LineID = "stale-correction-line"
	hist.events = []schemas.UsageEvent{e1, e2}
	hist.lines = append(append([]schemas.RatedLine{}, streamed...), stale)

	// The second tier's price drops to 0.25, valid from before the usage.
	src.set(t, tenant, strings.Replace(graduatedCatalogue, "{unit_price: 0.5}", "{unit_price: 0.25}", 1))
	engines.Refresh()

	req := schemas.Rerate{Tenant: tenant, Customer: "c1", Period: "2026-05", RequestedAt: at}
	v, _ := json.Marshal(&req)
	rm := kafka.Message{Topic: schemas.TopicAccepted, Partition: 1, Offset: 12, Key: req.Key(), Value: v,
		Headers: schemas.RerateHeaders(), Time: at}
	e3 := ev("e3", 10)
	out.msgs = nil
	// The request and the next record in one batch: the record is priced on
	// the recomputed state.
	if err := s.HandleBatch(ctx, []kafka.Message{rm, usageMsg(t, 13, e3)}); err != nil {
		t.Fatal(err)
	}
	if stored.asked != 1 {
		t.Fatalf("waited for the aggregator %d times, want once", stored.asked)
	}
	got := map[string]string{}
	for _, l := range ratedLines(t, out.msgs) {
		got[l.LineID] = l.Amount.String()
	}
	want := map[string]string{
		streamed[0].LineID:      "60", // 60 × 1
		streamed[1].LineID:      "45", // 40 × 1 + 20 × 0.25
		"stale-correction-line": "0",
		// e3 on top: cost(130) − cost(120) = 107.5 → 108 (half up) − 105.
		schemas.LineID(tenant, "e3", "s1/calls"): "3",
	}
	if len(got) != len(want) {
		t.Fatalf("lines %v, want %v", got, want)
	}
	for id, amt := range want {
		if got[id] != amt {
			t.Errorf("line %s = %s, want %s (all: %v)", id, got[id], amt, got)
		}
	}

	// Redelivered (crash before the offsets were committed): nothing again.
	out.msgs = nil
	if err := s.HandleBatch(ctx, []kafka.Message{rm, usageMsg(t, 13, e3)}); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 0 {
		t.Fatalf("a redelivered re-rate wrote %d messages, want none", len(out.msgs))
	}
}

// A copy of a record that dedupe passes on after a re-rate request (it
// handled the record's batch again) is held by the recomputed state: it is
// skipped, and the next record is priced on the recomputation.
func TestRerateThenCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	out := &capture{}
	s, tenant := newTieredStage(t, "rerate-copy", runstate.New(rdb, time.Hour), out, at)
	hist := &memoryHistory{}
	s.WithRerate(hist, &storedAlready{}, time.Second)
	ev := func(id string, q int64) schemas.UsageEvent {
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c1", Element: "calls",
			Quantity: decimal.NewFromInt(q), Time: at, ReceivedAt: at}
	}
	e1, e2, e3 := ev("e1", 60), ev("e2", 60), ev("e3", 30)
	if err := s.HandleBatch(ctx, []kafka.Message{copyMsg(t, 10, 100, e1), copyMsg(t, 11, 101, e2)}); err != nil {
		t.Fatal(err)
	}
	hist.events = []schemas.UsageEvent{e1, e2}
	hist.lines = ratedLines(t, out.msgs)
	req := schemas.Rerate{Tenant: tenant, Customer: "c1", Period: "2026-05", RequestedAt: at}
	v, _ := json.Marshal(&req)
	rm := kafka.Message{Topic: schemas.TopicAccepted, Partition: 1, Offset: 12, Key: req.Key(), Value: v,
		Headers: schemas.RerateHeaders(), Time: at}
	if err := s.HandleBatch(ctx, []kafka.Message{rm, copyMsg(t, 13, 101, e2), copyMsg(t, 14, 102, e3)}); err != nil {
		t.Fatal(err)
	}
	// 60 + 50 recomputed, then e3 from 120: cost(150) − cost(120) = 15.
	if got := charged(t, out.msgs); !got.Equal(decimal.NewFromInt(125)) {
		t.Fatalf("charged %s, want 125", got)
	}
}
