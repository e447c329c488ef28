package corrections

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/admin/usage"
	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/rater"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// env is what every test of this package shares (testenv): a real
// ClickHouse (each test migrates a database of its own) and an in-memory
// kfake broker with the pipeline's topics. Tests do not run in parallel;
// each reads only what was written after it started.
var env struct {
	brokers []string
}

const partitions = 3

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true, Kafka: true}, func(ctx context.Context) error {
		env.brokers = testenv.Brokers()
		return createTopics(ctx, schemas.Topics...)
	})
}

const testPrices = `{"tenants": {
  "acme": {"currency": "JPY", "rounding": "half_up", "time_zone": "Asia/Tokyo", "customers": ["c1", "c2", "c3"],
           "prices": {"api_calls": "0.5", "transfer_gb": "9.8", "storage": "1234567890.123456789"}},
  "beta": {"currency": "USD", "rounding": "up", "time_zone": "UTC", "customers": ["c1"],
           "prices": {"api_calls": "0.0125"}}
}}`

// pipeline is one test's data path from usage.accepted on: the real rater
// and aggregator stages over the shared broker, into a ClickHouse database
// of the test's own, and the correction service and HTTP handlers on top.
type pipeline struct {
	t       *testing.T
	conn    driver.Conn
	writer  *kafka.Writer
	rater   *rater.Stage
	agg     *aggregator.Stage
	records *usagedb.Records
	charges *usagedb.Charges
	svc     *Service
	periods *Periods
	mux     *http.ServeMux
	read    offsets // how far each topic has been handed to the stages
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "lc")
	w := stream.NewWriter(env.brokers, "")
	t.Cleanup(func() { w.Close() })
	var f pricelist.File
	if err := json.Unmarshal([]byte(testPrices), &f); err != nil {
		t.Fatal(err)
	}
	pl, err := pricelist.New(f)
	if err != nil {
		t.Fatal(err)
	}
	m := stream.NewMetrics(prometheus.NewRegistry())
	p := &pipeline{t: t, conn: conn, writer: w,
		rater:   rater.NewStage(pl, w, m),
		agg:     aggregator.NewStage(conn, m, prometheus.NewRegistry()),
		records: usagedb.NewRecords(conn),
		charges: usagedb.NewCharges(conn),
		periods: NewPeriods(conn),
		mux:     http.NewServeMux(),
	}
	p.svc = NewService(p.records, p.periods, w, prometheus.NewRegistry())
	for _, a := range []string{schemas.ActionInvalidate, schemas.ActionCancel} {
		p.mux.Handle("POST /v1/usage/{usageId}/"+a, p.svc.ServeOne(a))
		p.mux.Handle("POST /v1/usage/"+a, p.svc.ServeBulk(a))
	}
	p.mux.HandleFunc("GET /v1/usage/{usageId}", usage.NewRecords(p.records, page.NewCodec([]byte("k"), 1000)).ServeGet)
	p.read = endOffsets(t)
	return p
}

var usageTime = time.Date(2026, 11, 10, 9, 30, 0, 123456789, time.UTC)

// event is a usage record of tenant at usageTime plus minutes.
func event(tenant, id, customer, element, qty string, minutes int) schemas.UsageEvent {
	return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Element: element,
		Quantity: decimal.RequireFromString(qty), Time: usageTime.Add(time.Duration(minutes) * time.Minute),
		ReceivedAt: usageTime.Add(time.Hour), Attributes: map[string]string{"region": "jp", "az": "1a"}}
}

// accept writes events to usage.accepted as dedupe would: the event's bytes,
// keyed by tenant/customer.
func (p *pipeline) accept(evs ...schemas.UsageEvent) {
	p.t.Helper()
	msgs := make([]kafka.Message, len(evs))
	for i := range evs {
		b, err := json.Marshal(&evs[i])
		if err != nil {
			p.t.Fatal(err)
		}
		msgs[i] = kafka.Message{Topic: schemas.TopicAccepted, Key: evs[i].PartitionKey(), Value: b, Time: evs[i].ReceivedAt}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.writer.WriteMessages(ctx, msgs...); err != nil {
		p.t.Fatal(err)
	}
}

// run hands everything new to the stages until nothing new appears: the
// rater gets usage.accepted, the aggregator every topic it consumes. With
// deliveries > 1 every batch is handed to each stage that many times, as a
// redelivery after a crash before the commit would.
func (p *pipeline) run(deliveries int) {
	p.t.Helper()
	ctx := context.Background()
	for round := 0; ; round++ {
		if round > 10 {
			p.t.Fatal("the pipeline does not settle")
		}
		msgs, next := readSince(p.t, p.read)
		p.read = next
		if len(msgs) == 0 {
			return
		}
		var toRater, toAgg []kafka.Message
		for _, m := range msgs {
			if m.Topic == schemas.TopicAccepted {
				toRater = append(toRater, m)
			}
			toAgg = append(toAgg, m)
		}
		for range deliveries {
			if len(toRater) > 0 {
				if err := p.rater.HandleBatch(ctx, toRater); err != nil {
					p.t.Fatal(err)
				}
			}
			if err := p.agg.HandleBatch(ctx, toAgg); err != nil {
				p.t.Fatal(err)
			}
		}
	}
}

// post sends a request to the correction routes as tenant.
func (p *pipeline) post(tenant, path, body string) (int, http.Header, map[string]any) {
	p.t.Helper()
	return p.do(tenant, http.MethodPost, path, body)
}

func (p *pipeline) do(tenant, method, path, body string) (int, http.Header, map[string]any) {
	p.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{Tenant: tenant, ClientID: "kc_test"}))
	rec := httptest.NewRecorder()
	p.mux.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		p.t.Fatalf("%s %s: %d %q: %v", method, path, rec.Code, rec.Body.String(), err)
	}
	return rec.Code, rec.Header(), out
}

// detail reads GET /v1/usage/{id}.
func (p *pipeline) detail(tenant, id string) *usagedb.RecordDetail {
	p.t.Helper()
	d, err := p.records.Get(context.Background(), tenant, id)
	if err != nil {
		p.t.Fatal(err)
	}
	return d
}

// total is a customer's charge for the period: the total, the summed
// quantity of one element and how many records count.
type total struct {
	Amount   string
	Quantity string
	Events   uint64
}

func (p *pipeline) total(tenant, customer, period, element string) total {
	p.t.Helper()
	r, err := p.charges.Query(context.Background(), tenant, customer, period)
	if err != nil {
		p.t.Fatal(err)
	}
	out := total{Amount: r.Total}
	for _, l := range r.Lines {
		if l.Element == element {
			out.Quantity, out.Events = l.Quantity, l.Events
		}
	}
	return out
}

// offsets are the next offsets to read, by topic and partition.
type offsets map[string]map[int]int64

func kclient() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(env.brokers...), Timeout: 5 * time.Second}
}

// endOffsets returns the end offset of every partition of every topic.
func endOffsets(t *testing.T) offsets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, topic := range schemas.Topics {
		for p := range partitions {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	resp, err := kclient().ListOffsets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := offsets{}
	for topic, ps := range resp.Topics {
		out[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("list offsets %s/%d: %v", topic, p.Partition, p.Error)
			}
			out[topic][p.Partition] = p.LastOffset
		}
	}
	return out
}

// readSince returns every message written after since (headers included),
// partition by partition in offset order, and the new end offsets.
func readSince(t *testing.T, since offsets) ([]kafka.Message, offsets) {
	t.Helper()
	end := endOffsets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []kafka.Message
	for _, topic := range schemas.Topics {
		for p := range partitions {
			for off := since[topic][p]; off < end[topic][p]; {
				if ctx.Err() != nil {
					t.Fatalf("read %s/%d: stuck at offset %d of %d", topic, p, off, end[topic][p])
				}
				resp, err := kclient().Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: off,
					MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
				if err != nil || resp.Error != nil {
					t.Fatalf("fetch %s/%d@%d: %v %v", topic, p, off, err, resp.Error)
				}
				for {
					r, err := resp.Records.ReadRecord()
					if err != nil {
						break
					}
					if r.Offset < off || r.Offset >= end[topic][p] {
						continue
					}
					m := kafka.Message{Topic: topic, Partition: p, Offset: r.Offset, Time: r.Time}
					if r.Key != nil {
						m.Key, _ = io.ReadAll(r.Key)
					}
					if r.Value != nil {
						m.Value, _ = io.ReadAll(r.Value)
					}
					for _, h := range r.Headers {
						m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
					}
					out = append(out, m)
					off = r.Offset + 1
				}
			}
		}
	}
	return out, end
}

// createTopics creates the package's topics on its broker, partitions each.
func createTopics(ctx context.Context, topics ...string) error {
	specs := make([]stream.TopicSpec, len(topics))
	for i, name := range topics {
		specs[i] = stream.TopicSpec{Name: name, Partitions: partitions, RetentionMS: -1}
	}
	return stream.CreateTopics(ctx, testenv.Brokers(), specs)
}
