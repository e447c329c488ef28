package rater

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
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

// BenchmarkRatePerUnit measures pricing one event at a per-unit price,
// including the line id and the period in the tenant's time zone.
func BenchmarkRatePerUnit(b *testing.B) {
	pl, err := pricelist.New(pricelist.File{Tenants: map[string]pricelist.TenantFile{
		"jp": {Currency: "JPY", Rounding: "half_up", TimeZone: "Asia/Tokyo", AnyCustomer: true, Prices: map[string]string{"api": "0.037"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	ev := schemas.UsageEvent{Tenant: "jp", ID: "evt-00000001", Customer: "c1", Element: "api",
		Quantity: decimal.RequireFromString("1234.5"), Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if o := pl.Rate(&ev, now); o.Line == nil {
			b.Fatal("unrated")
		}
	}
}

// BenchmarkStatefulStage measures the stage pricing batches of 1,000 events
// of 100 customers by a graduated catalogue, with the running state in a
// real Redis (one load and one save per batch): the cost per event of the
// running state's bookkeeping on top of the pricing. Needs Redis (not with
// -short).
func BenchmarkStatefulStage(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Redis")
	}
	const customers, batchSize = 100, 1000
	tenant := "bench-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	var yaml strings.Builder
	yaml.WriteString(strings.Split(graduatedCatalogue, "basic_contracts:")[0])
	yaml.WriteString("basic_contracts:\n")
	for c := range customers {
		fmt.Fprintf(&yaml, "  - {id: b%d, customer: c%d, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}\n", c, c)
	}
	yaml.WriteString("service_contracts:\n")
	for c := range customers {
		fmt.Fprintf(&yaml, "  - {id: s%d, customer: c%d, basic_contract: b%d, service: api, start_date: 2026-01-01, plans: [{plan: std, start_date: 2026-01-01}]}\n", c, c, c)
	}
	cat, err := catalog.Decode(strings.NewReader(yaml.String()))
	if err != nil {
		b.Fatal(err)
	}
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{tenant: cat}, vers: map[string]uint64{tenant: 1}, ch: make(chan struct{})}
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	if engines.Engine(tenant) == nil {
		b.Fatal("no engine")
	}
	s := NewStage(&pricelist.List{}, discard{}, stream.NewMetrics(prometheus.NewRegistry())).WithEngines(engines, runstate.New(rdb, time.Hour))
	at := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return at.Add(time.Hour) }
	batch := make([]kafka.Message, batchSize)
	var offset int64
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range batch {
			ev := schemas.UsageEvent{Tenant: tenant, ID: "e" + strconv.FormatInt(offset, 10), Customer: "c" + strconv.Itoa(i%customers),
				Element: "calls", Quantity: decimal.NewFromInt(1), Time: at, ReceivedAt: at}
			v, err := json.Marshal(&ev)
			if err != nil {
				b.Fatal(err)
			}
			batch[i] = kafka.Message{Topic: schemas.TopicAccepted, Partition: 1, Offset: offset, Key: ev.PartitionKey(), Value: v, Time: at,
				Headers: schemas.RawPositionHeaders(nil, 3, offset)}
			offset++
		}
		b.StartTimer()
		if err := s.HandleBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(offset), "ns/event")
}

type discard struct{}

func (discard) WriteMessages(context.Context, ...kafka.Message) error { return nil }
