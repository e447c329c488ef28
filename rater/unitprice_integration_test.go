package rater

import (
	"context"
	"encoding/json"
	"fmt"
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

// catalogueWithRate is graduatedCatalogue with another rate-table version.
func catalogueWithRate(rate string) string {
	return strings.Replace(graduatedCatalogue, "model: graduated\n        tiers: [{up_to: 100, unit_price: 1}, {unit_price: 0.5}]", rate, 1)
}

// A catalogue line carries the price per unit it was priced at when its rate
// has one (per_unit), and none when it does not (graduated, volume: the
// amount over the quantity is no price of the rate) — streamed, corrected
// and re-rated alike.
func TestCatalogueLinesCarryTheirUnitPrice(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	tests := []struct {
		name, rate string
		priced     bool
		unit       string
	}{
		{"per_unit", "model: per_unit\n        unit_price: 1.2", true, "1.2"},
		{"graduated", "model: graduated\n        tiers: [{up_to: 100, unit_price: 1}, {unit_price: 0.5}]", false, "0"},
		{"volume", "model: volume\n        tiers: [{up_to: 100, unit_price: 1}, {unit_price: 0.5}]", false, "0"},
	}
	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := fmt.Sprintf("unit-%d-%d", i, time.Now().UnixNano())
			src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
			src.set(t, tenant, catalogueWithRate(tt.rate))
			engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			engines.Refresh()
			out := &capture{}
			s := NewStage(&pricelist.List{}, out, stream.NewMetrics(prometheus.NewRegistry())).WithEngines(engines, runstate.New(rdb, time.Hour))
			ev := schemas.UsageEvent{Tenant: tenant, ID: "e1", Customer: "c1", Element: "calls", Quantity: decimal.NewFromInt(150), Time: at, ReceivedAt: at}
			corr := schemas.Correction{Action: schemas.ActionInvalidate, Generation: 1, Event: ev, Actor: "test", RequestedAt: at}
			cv, _ := json.Marshal(&corr)
			batch := []kafka.Message{usageMsg(t, 1, ev), {Topic: schemas.TopicAccepted, Partition: 1, Offset: 2, Key: ev.PartitionKey(),
				Value: cv, Headers: schemas.CorrectionHeaders(), Time: at}}
			if err := s.HandleBatch(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			lines := ratedLines(t, out.msgs)
			if len(lines) != 2 {
				t.Fatalf("%d lines, want the usage line and its invalidation", len(lines))
			}
			for _, l := range lines {
				if l.UnitPriced != tt.priced || !l.UnitPrice.Equal(decimal.RequireFromString(tt.unit)) {
					t.Errorf("line %s (amount %s): unit price %s priced %v, want %s %v", l.LineID, l.Amount, l.UnitPrice, l.UnitPriced, tt.unit, tt.priced)
				}
			}
			// A re-rate prices the period again from scratch.
			b := engines.Engine(tenant).RatePeriod([]schemas.UsageEvent{ev})
			if len(b.Lines) != 1 || b.Lines[0].UnitPriced != tt.priced || !b.Lines[0].UnitPrice.Equal(decimal.RequireFromString(tt.unit)) {
				t.Errorf("re-rated lines %+v, want unit price %s priced %v", b.Lines, tt.unit, tt.priced)
			}
		})
	}
}
