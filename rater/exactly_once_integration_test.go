package rater

import (
	"context"
	"encoding/json"
	"errors"
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

// rawPartition is the usage.raw partition of every test record below.
const rawPartition = 3

// copyMsg is a usage.accepted message at offset carrying the usage.raw
// position dedupe passed it from: every copy of one record shares rawOffset.
func copyMsg(t *testing.T, offset, rawOffset int64, ev schemas.UsageEvent) kafka.Message {
	t.Helper()
	m := usageMsg(t, offset, ev)
	m.Headers = schemas.RawPositionHeaders(nil, rawPartition, rawOffset)
	return m
}

func correctionMsg(t *testing.T, offset int64, c schemas.Correction) kafka.Message {
	t.Helper()
	v, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: schemas.TopicAccepted, Partition: 1, Offset: offset, Key: c.Event.PartitionKey(), Value: v,
		Headers: schemas.CorrectionHeaders(), Time: c.RequestedAt}
}

// charged is what rated_usage sums to for the lines: one line per id, the
// last written wins (ReplacingMergeTree read with FINAL).
func charged(t *testing.T, msgs []kafka.Message) decimal.Decimal {
	t.Helper()
	byID := map[string]decimal.Decimal{}
	for _, l := range ratedLines(t, msgs) {
		byID[l.LineID] = l.Amount
	}
	sum := decimal.Zero
	for _, a := range byID {
		sum = sum.Add(a)
	}
	return sum
}

// newTieredStage is a stage pricing a fresh tenant by the graduated
// catalogue (1 yen per call up to 100, then 0.5) with its running state in
// the test Redis; at is the business time the stage reads.
func newTieredStage(t *testing.T, name string, states States, out stream.Producer, at time.Time) (*Stage, string) {
	t.Helper()
	tenant := name + "-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
	src.set(t, tenant, graduatedCatalogue)
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	if engines.Engine(tenant) == nil {
		t.Fatal("no engine for the tenant")
	}
	s := NewStage(&pricelist.List{}, out, stream.NewMetrics(prometheus.NewRegistry())).WithEngines(engines, states)
	s.now = func() time.Time { return at.Add(time.Hour) }
	return s, tenant
}

// A record that dedupe passes on twice (it handled the batch again after a
// rebalance or a crash before its commit) reaches the rater at a new
// usage.accepted offset with the same usage.raw position: the running total
// counts it once, however the copies fall into batches.
func TestCopiesMoveTheRunningTotalOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	type step struct {
		offset, raw int64 // raw < 0: a correction
		id          string
		q           int64
		corr        *schemas.Correction
	}
	invalidateE1 := &schemas.Correction{Action: schemas.ActionInvalidate, Generation: 1, Actor: "test", RequestedAt: at}
	tests := []struct {
		name    string
		steps   []step
		batches []int // sizes; the rest in one batch
		want    int64
	}{
		{
			// 60 + 50 (40 × 1 + 20 × 0.5) + 15: cost(150) = 125; the
			// copy of e1 counted again would price e3 from 210 (95).
			name:  "copy of e1 between e2 and e3, one batch",
			steps: []step{{10, 100, "e1", 60, nil}, {11, 101, "e2", 60, nil}, {12, 100, "e1", 60, nil}, {13, 102, "e3", 30, nil}},
			want:  125,
		},
		{
			name:    "copy of e1 between e2 and e3, batch per record",
			steps:   []step{{10, 100, "e1", 60, nil}, {11, 101, "e2", 60, nil}, {12, 100, "e1", 60, nil}, {13, 102, "e3", 30, nil}},
			batches: []int{1, 1, 1, 1},
			want:    125,
		},
		{
			name: "dedupe handled the whole batch again",
			steps: []step{{10, 100, "e1", 60, nil}, {11, 101, "e2", 60, nil},
				{12, 100, "e1", 60, nil}, {13, 101, "e2", 60, nil}, {14, 102, "e3", 30, nil}},
			batches: []int{2},
			want:    125,
		},
		{
			// A correction neither compares its accepted offset with raw
			// positions nor moves them: the copy of e2 after it is still
			// recognised. 60 + 50 − 50 (cost(60) − cost(120)) + 30
			// (cost(90) − cost(60)) = cost(90).
			name: "copy after an invalidation",
			steps: []step{{10, 100, "e1", 60, nil}, {11, 101, "e2", 60, nil}, {12, -1, "e1", 60, invalidateE1},
				{13, 101, "e2", 60, nil}, {14, 102, "e3", 30, nil}},
			batches: []int{2, 1},
			want:    90,
		},
	}
	tests = append(tests, []struct {
		name    string
		steps   []step
		batches []int
		want    int64
	}{
		{
			// Records passed on before dedupe named raw positions (raw -2)
			// are recognised by their usage.accepted position: the rater's
			// own redelivery of them is skipped.
			name: "records without a raw position redelivered by the rater",
			steps: []step{{10, -2, "e1", 60, nil}, {11, -2, "e2", 60, nil},
				{10, -2, "e1", 60, nil}, {11, -2, "e2", 60, nil}, {12, 102, "e3", 30, nil}},
			batches: []int{2},
			want:    125,
		},
		{
			name: "upgrade: a record without, then records with a raw position, redelivered",
			steps: []step{{10, -2, "e1", 60, nil}, {11, 101, "e2", 60, nil},
				{10, -2, "e1", 60, nil}, {11, 101, "e2", 60, nil}, {12, 102, "e3", 30, nil}},
			batches: []int{2},
			want:    125,
		},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &capture{}
			s, tenant := newTieredStage(t, "copies", runstate.New(rdb, time.Hour), out, at)
			var msgs []kafka.Message
			for _, st := range tt.steps {
				ev := schemas.UsageEvent{Tenant: tenant, ID: st.id, Customer: "c1", Element: "calls",
					Quantity: decimal.NewFromInt(st.q), Time: at, ReceivedAt: at}
				if st.corr != nil {
					c := *st.corr
					c.Event = ev
					msgs = append(msgs, correctionMsg(t, st.offset, c))
					continue
				}
				if st.raw == -2 {
					msgs = append(msgs, usageMsg(t, st.offset, ev))
					continue
				}
				msgs = append(msgs, copyMsg(t, st.offset, st.raw, ev))
			}
			for _, n := range append(tt.batches, len(msgs)) {
				n = min(n, len(msgs))
				if err := s.HandleBatch(context.Background(), msgs[:n]); err != nil {
					t.Fatal(err)
				}
				msgs = msgs[n:]
			}
			if got := charged(t, out.msgs); !got.Equal(decimal.NewFromInt(tt.want)) {
				t.Fatalf("charged %s, want %d", got, tt.want)
			}
		})
	}
}

// gatedStates holds a Save until released, as a rater that is still
// finishing a batch after its partitions moved to another member.
type gatedStates struct {
	States
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStates) Save(ctx context.Context, keys []runstate.Key, entries []runstate.Entry) error {
	close(g.entered)
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.States.Save(ctx, keys, entries)
}

// A rater that saves late (its partitions moved while it finished a batch)
// must not roll the running total back over the newer state of the member
// that took the partitions over: its save is fenced, and its retry skips
// what the other member applied.
func TestLateSaveIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	store := runstate.New(rdb, time.Hour)
	outB := &capture{}
	b, tenant := newTieredStage(t, "fence", store, outB, at)
	ev := func(id string, q int64) schemas.UsageEvent {
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c1", Element: "calls",
			Quantity: decimal.NewFromInt(q), Time: at, ReceivedAt: at}
	}
	e1, e2, e3, e4 := copyMsg(t, 10, 100, ev("e1", 60)), copyMsg(t, 11, 101, ev("e2", 30)),
		copyMsg(t, 12, 102, ev("e3", 20)), copyMsg(t, 13, 103, ev("e4", 10))
	if err := b.HandleBatch(ctx, []kafka.Message{e1}); err != nil {
		t.Fatal(err)
	}

	// Member A (the same tenant and engine, a gate in front of the store)
	// loads the state after e1, prices e2 and stops before its save.
	gate := &gatedStates{States: store, entered: make(chan struct{}), release: make(chan struct{})}
	outA := &capture{}
	a := *b
	a.states, a.producer = gate, outA
	aDone := make(chan error, 1)
	go func() { aDone <- a.HandleBatch(ctx, []kafka.Message{e2}) }()
	<-gate.entered

	// Member B took the partition over from the committed offset: e2, e3.
	if err := b.HandleBatch(ctx, []kafka.Message{e2, e3}); err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	errA := <-aDone
	if errA == nil {
		t.Fatal("the late save succeeded")
	}
	if !errors.Is(errA, runstate.ErrFenced) {
		t.Fatalf("the late save failed with %v, want runstate.ErrFenced", errA)
	}
	// A's consumer retries the batch: it reloads the state, finds e2 applied
	// and writes nothing.
	outA.msgs = nil
	a.states = store
	if err := a.HandleBatch(ctx, []kafka.Message{e2}); err != nil {
		t.Fatal(err)
	}
	if len(outA.msgs) != 0 {
		t.Fatalf("the retry wrote %d messages, want none", len(outA.msgs))
	}

	// e4 is priced from 110 calls: 10 × 0.5. 60 + 30 + 15 + 5 = 110.
	if err := b.HandleBatch(ctx, []kafka.Message{e4}); err != nil {
		t.Fatal(err)
	}
	if got := charged(t, append(outA.msgs, outB.msgs...)); !got.Equal(decimal.NewFromInt(110)) {
		t.Fatalf("charged %s, want 110", got)
	}
}

// A record whose raw position headers are damaged is parked as malformed:
// the running state cannot tell whether it holds it already.
func TestDamagedRawPositionIsParked(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	out := &capture{}
	s, tenant := newTieredStage(t, "damaged", runstate.New(rdb, time.Hour), out, at)
	m := usageMsg(t, 10, schemas.UsageEvent{Tenant: tenant, ID: "e1", Customer: "c1", Element: "calls",
		Quantity: decimal.NewFromInt(1), Time: at, ReceivedAt: at})
	m.Headers = []kafka.Header{{Key: schemas.HeaderRawOffset, Value: []byte("12")}} // no partition
	if err := s.HandleBatch(context.Background(), []kafka.Message{m}); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 1 || out.msgs[0].Topic != schemas.TopicUnrated || !strings.Contains(string(out.msgs[0].Value), schemas.ReasonMalformed) {
		t.Fatalf("outputs %v, want one malformed record on usage.unrated", out.msgs)
	}
}
