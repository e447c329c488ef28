package rater

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
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

// staticCatalogues is a catalogue source holding fixed catalogues.
type staticCatalogues struct {
	mu   sync.Mutex
	cats map[string]*catalog.Catalogue
	vers map[string]uint64
	ch   chan struct{}
}

func (s *staticCatalogues) Tenants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []string
	for t := range s.cats {
		ts = append(ts, t)
	}
	return ts
}
func (s *staticCatalogues) Version(t string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vers[t]
}
func (s *staticCatalogues) Catalogue(t string) *catalog.Catalogue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cats[t]
}
func (s *staticCatalogues) Subscribe() (<-chan struct{}, func()) { return s.ch, func() {} }

func (s *staticCatalogues) set(t *testing.T, tenant, yaml string) {
	t.Helper()
	c, err := catalog.Decode(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.cats[tenant] = c
	s.vers[tenant]++
	s.mu.Unlock()
}

// graduated: 1 yen per call up to 100 calls, then 0.5.
const graduatedCatalogue = `
services: [{code: api, name: API, versions: [{valid_from: 2026-01-01T00:00:00Z, kind: service}]}]
elements: [{code: calls, name: Calls, versions: [{valid_from: 2026-01-01T00:00:00Z, unit: call, aggregation: sum}]}]
rate_tables:
  - code: tiers
    name: Tiers
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 100, unit_price: 1}, {unit_price: 0.5}]
fees: [{code: calls, name: Calls, versions: [{valid_from: 2026-01-01T00:00:00Z, kind: metered, element: calls, rates: [{rate_table: tiers}]}]}]
plans: [{code: std, name: Std, versions: [{valid_from: 2026-01-01T00:00:00Z, type: metered, currency: JPY, fees: [calls]}]}]
basic_contracts:
  - {id: b1, customer: c1, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}
service_contracts:
  - {id: s1, customer: c1, basic_contract: b1, service: api, start_date: 2026-01-01, plans: [{plan: std, start_date: 2026-01-01}]}
`

// failingStates fails the next Save once, as if the process died between
// writing the lines and saving the state.
type failingStates struct {
	States
	failNext bool
}

func (f *failingStates) Save(ctx context.Context, keys []runstate.Key, entries []runstate.Entry) error {
	if f.failNext {
		f.failNext = false
		return errors.New("killed before the state was saved")
	}
	return f.States.Save(ctx, keys, entries)
}

func usageMsg(t *testing.T, offset int64, ev schemas.UsageEvent) kafka.Message {
	t.Helper()
	v, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: schemas.TopicAccepted, Partition: 1, Offset: offset, Key: ev.PartitionKey(), Value: v, Time: ev.ReceivedAt}
}

func ratedLines(t *testing.T, msgs []kafka.Message) []schemas.RatedLine {
	t.Helper()
	var out []schemas.RatedLine
	for _, m := range msgs {
		if m.Topic != schemas.TopicRated {
			continue
		}
		var l schemas.RatedLine
		if err := schemas.UnmarshalRatedLine(m.Value, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// Tiered lines are cost(after) − cost(before) with the running state in
// Redis; a batch redelivered after its state was saved adds nothing, one
// redelivered after a crash before the save repeats the same lines, and an
// invalidation takes out exactly what the record now contributes.
func TestStatefulRating(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	tenant := "stateful-" + strings.ToLower(time.Now().Format("150405.000000"))
	tenant = strings.ReplaceAll(tenant, ".", "")
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
	src.set(t, tenant, graduatedCatalogue)
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	if engines.Engine(tenant) == nil {
		t.Fatal("no engine for the tenant")
	}
	states := &failingStates{States: runstate.New(rdb, time.Hour)}
	out := &capture{}
	s := NewStage(&pricelist.List{}, out, stream.NewMetrics(prometheus.NewRegistry())).WithEngines(engines, states)

	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	ev := func(id string, q int64) schemas.UsageEvent {
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c1", Element: "calls",
			Quantity: decimal.NewFromInt(q), Time: at, ReceivedAt: at}
	}
	amounts := func(ls []schemas.RatedLine) []string {
		var a []string
		for _, l := range ls {
			a = append(a, l.Amount.String())
		}
		return a
	}
	batch1 := []kafka.Message{usageMsg(t, 10, ev("e1", 60)), usageMsg(t, 11, ev("e2", 60))}
	if err := s.HandleBatch(ctx, batch1); err != nil {
		t.Fatal(err)
	}
	first := ratedLines(t, out.msgs)
	// 60 × 1 = 60; then 40 × 1 + 20 × 0.5 = 50.
	if got := amounts(first); strings.Join(got, ",") != "60,50" {
		t.Fatalf("amounts = %v, want 60,50", got)
	}
	if first[0].Period != "2026-05" || first[0].Currency != "JPY" || first[0].Event.Contract != "s1" {
		t.Fatalf("line = %+v", first[0])
	}

	// Redelivered after the state was saved: nothing is priced again.
	out.msgs = nil
	if err := s.HandleBatch(ctx, batch1); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 0 {
		t.Fatalf("a replayed batch wrote %d messages, want none", len(out.msgs))
	}

	// The next batch dies after writing its lines but before saving the
	// state; its redelivery writes the very same lines (same ids).
	batch2 := []kafka.Message{usageMsg(t, 12, ev("e3", 30))}
	states.failNext = true
	out.msgs = nil
	if err := s.HandleBatch(ctx, batch2); err == nil {
		t.Fatal("the batch succeeded although its state was not saved")
	}
	crashed := ratedLines(t, out.msgs)
	out.msgs = nil
	if err := s.HandleBatch(ctx, batch2); err != nil {
		t.Fatal(err)
	}
	again := ratedLines(t, out.msgs)
	if len(crashed) != 1 || len(again) != 1 || crashed[0].LineID != again[0].LineID || !crashed[0].Amount.Equal(again[0].Amount) ||
		!again[0].Amount.Equal(decimal.NewFromInt(15)) {
		t.Fatalf("before the crash %v, after %v; want one line of 15 both times with one id", amounts(crashed), amounts(again))
	}

	// Invalidate e1 (60 of 150 calls): cost(90) − cost(150) = 90 − 125.
	corr := schemas.Correction{Action: schemas.ActionInvalidate, Generation: 1, Event: ev("e1", 60), Actor: "test", RequestedAt: at}
	v, _ := json.Marshal(&corr)
	cm := kafka.Message{Topic: schemas.TopicAccepted, Partition: 1, Offset: 13, Key: corr.Event.PartitionKey(), Value: v,
		Headers: schemas.CorrectionHeaders(), Time: at}
	out.msgs = nil
	if err := s.HandleBatch(ctx, []kafka.Message{cm}); err != nil {
		t.Fatal(err)
	}
	lines := ratedLines(t, out.msgs)
	if len(lines) != 1 || !lines[0].Amount.Equal(decimal.NewFromInt(-35)) || !lines[0].Event.Quantity.Equal(decimal.NewFromInt(-60)) {
		t.Fatalf("invalidation lines = %v, want one of -35", amounts(lines))
	}
	if last := out.msgs[len(out.msgs)-1]; last.Topic != schemas.TopicStatus {
		t.Fatalf("last message on %s, want the status change", last.Topic)
	}
	// A second admin published the same generation: it must not move the
	// running state again.
	twin := cm
	twin.Offset = 14
	out.msgs = nil
	if err := s.HandleBatch(ctx, []kafka.Message{twin}); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 0 {
		t.Fatalf("a second correction of the same generation wrote %d messages, want none", len(out.msgs))
	}
	// Cancelling the invalidation puts the record back: cost(150) − cost(90).
	cancel := corr
	cancel.Action, cancel.Generation = schemas.ActionCancel, 2
	v, _ = json.Marshal(&cancel)
	cm.Value, cm.Offset = v, 15
	out.msgs = nil
	if err := s.HandleBatch(ctx, []kafka.Message{cm}); err != nil {
		t.Fatal(err)
	}
	if lines := ratedLines(t, out.msgs); len(lines) != 1 || !lines[0].Amount.Equal(decimal.NewFromInt(35)) {
		t.Fatalf("cancellation lines = %v, want one of 35", amounts(lines))
	}
	// A stale generation-1 invalidation arriving after the cancel changes
	// nothing.
	twin.Offset = 16
	out.msgs = nil
	if err := s.HandleBatch(ctx, []kafka.Message{twin}); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 0 {
		t.Fatalf("a stale correction wrote %d messages, want none", len(out.msgs))
	}

	// A customer without a contract is unrated with the engine's reason.
	stranger := ev("e9", 1)
	stranger.Customer = "nobody"
	out.msgs = nil
	if err := s.HandleBatch(ctx, []kafka.Message{usageMsg(t, 17, stranger)}); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 1 || out.msgs[0].Topic != schemas.TopicUnrated || !strings.Contains(string(out.msgs[0].Value), schemas.ReasonUnknownCustomer) {
		t.Fatalf("stranger: %v", out.msgs)
	}
}
