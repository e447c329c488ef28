package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// pipeline is a test's own two-step pipeline on the package's broker: a
// "dedupe" group on raw, then an "aggregator" group on accepted.
type pipeline struct {
	brokers                []string
	raw, accepted          string
	dedupe, aggregator     string
	steps                  [][]StageGroup
	client                 *kafka.Client
	behind                 chan []string // what each look of the wait found behind
	behindOnce, caughtOnce sync.Once
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	name := testenv.DatabaseName(t, "wm")
	p := &pipeline{brokers: testenv.Broker(t), raw: name + ".raw", accepted: name + ".accepted",
		dedupe: name + "-dedupe", aggregator: name + "-aggregator", behind: make(chan []string, 1)}
	p.steps = [][]StageGroup{{{Group: p.dedupe, Topics: []string{p.raw}}}, {{Group: p.aggregator, Topics: []string{p.accepted}}}}
	p.client = &kafka.Client{Addr: kafka.TCP(p.brokers...), Timeout: 10 * time.Second}
	if err := stream.CreateTopics(context.Background(), p.brokers, []stream.TopicSpec{{Name: p.raw, Partitions: 2, RetentionMS: -1},
		{Name: p.accepted, Partitions: 2, RetentionMS: -1}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// produce writes the events, as JSON keyed tenant/customer, to topic.
func (p *pipeline) produce(t *testing.T, topic string, evs []schemas.UsageEvent) {
	t.Helper()
	w := stream.NewWriter(p.brokers, topic)
	defer w.Close()
	var msgs []kafka.Message
	for i := range evs {
		b, err := json.Marshal(evs[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("%s/%s-%d", evs[i].Tenant, evs[i].Customer, i)), Value: b})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// consume is a stage: group reads topic and hands each batch of events to
// handle before it commits, until n records were handled.
func (p *pipeline) consume(t *testing.T, group, topic string, n int, handle func([]schemas.UsageEvent)) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: p.brokers, GroupID: group, Topic: topic, StartOffset: kafka.FirstOffset,
		MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for done := 0; done < n; done++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("%s: %v", group, err)
		}
		var ev schemas.UsageEvent
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		handle([]schemas.UsageEvent{ev})
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("%s: commit: %v", group, err)
		}
	}
}

func (p *pipeline) watermark(timeout time.Duration) *Watermark {
	return &Watermark{Client: p.client, Steps: p.steps, Timeout: timeout, Poll: 20 * time.Millisecond,
		onBehind: func(b []string) {
			p.behindOnce.Do(func() { p.behind <- b })
		}}
}

// A close started while the aggregator has not stored November's records
// waits for it: the wait reports the aggregator behind on the accepted
// topic, the aggregator then stores the records and commits, and the close
// computes from them (12,063 JPY, the month's total; without the wait it
// would have billed the fixed fees alone). The offsets it waited for are
// returned with the close.
func TestCloseWaitsForThePipeline(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	p := newPipeline(t)
	evs := november("acme")
	p.produce(t, p.raw, evs)
	p.consume(t, p.dedupe, p.raw, len(evs), func([]schemas.UsageEvent) {}) // dedupe is up to date
	p.produce(t, p.accepted, evs)
	e.svc.o.Watermark = p.watermark(2 * time.Minute)

	type result struct {
		res CloseResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := e.svc.Close(ctx, "acme", "2026-11", "test")
		done <- result{res, err}
	}()
	var behind []string
	select {
	case behind = <-p.behind:
	case r := <-done:
		t.Fatalf("the close finished without waiting for the aggregator: %+v %v", r.res, r.err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the close did not report waiting within 2 minutes")
	}
	if len(behind) == 0 || !strings.Contains(behind[0], "group "+p.aggregator+" is behind on "+p.accepted+" partition") {
		t.Fatalf("the wait reported %q, want the aggregator behind on %s", behind, p.accepted)
	}
	if e.receivableOrNil("acme", "2026-11") != nil {
		t.Fatal("a receivable was written while the aggregator was behind")
	}
	// The aggregator catches up: it stores each record, then commits.
	p.consume(t, p.aggregator, p.accepted, len(evs), func(b []schemas.UsageEvent) { e.storeRecords(b...) })
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the close did not finish within 2 minutes of the aggregator catching up")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := e.receivable("acme", "2026-11"); got.Status != "final" || !got.Total.Equal(dec("12063")) {
		t.Fatalf("receivable %s total %s, want final 12063", got.Status, got.Total)
	}
	var pinned int64
	for _, pin := range r.res.Pins {
		if pin.Group == p.aggregator && pin.Topic == p.accepted {
			pinned += pin.Offset
		}
	}
	if pinned != int64(len(evs)) {
		t.Errorf("pins %+v: the aggregator's add up to %d, want %d", r.res.Pins, pinned, len(evs))
	}
}

// A billing run whose aggregator never catches up fails when the wait's
// timeout passes: the job fails with an error naming the group, topic and
// partition behind, and so does the stored run; nothing is written.
func TestRunFailsWhenThePipelineLags(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	p := newPipeline(t)
	p.produce(t, p.accepted, november("acme")) // nobody consumes it
	e.svc.o.Watermark = p.watermark(time.Second)
	j := e.runJob(t, "acme", jobs.StatusFailed)
	want := "group " + p.aggregator + " is behind on " + p.accepted + " partition"
	if !strings.Contains(j.Error, want) || !strings.Contains(j.Error, "did not reach the run's watermark within 1s") {
		t.Errorf("job error %q, want it to name %q", j.Error, want)
	}
	row, err := e.store.GetRun(ctx, "acme", j.ID)
	if err != nil || row == nil || row.Status != "failed" || !strings.Contains(row.Error, want) {
		t.Fatalf("stored run %+v %v, want failed naming the lagging group", row, err)
	}
	if e.receivableOrNil("acme", "2026-11") != nil {
		t.Error("a receivable was written by a run that did not reach its watermark")
	}
	// A tenant without basic contracts fails at once, not after the wait:
	// its error is the catalogue's, not the pipeline's.
	if j := e.runJob(t, "nobody", jobs.StatusFailed); !strings.Contains(j.Error, ErrNoCatalogue.Error()) {
		t.Errorf("a run of a tenant without a catalogue failed with %q", j.Error)
	}
}

func (e *env) receivableOrNil(tenant, period string) *billingdb.Stored {
	e.t.Helper()
	r, err := e.store.Get(context.Background(), tenant, billing.ReceivableID(tenant, "b1", period))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// startJob creates a billing run job of the tenant's November and starts a job
// runner of its own for it; stop stops the runner.
func (e *env) startJob(t *testing.T, tenant string) (*jobs.Store, jobs.Job, func()) {
	t.Helper()
	js := jobs.NewStore(e.conn)
	runner := jobs.NewRunner(jobs.Options{Store: js, Redis: testenv.Redis(t), LeaseTTL: 3 * time.Second, Owner: testenv.DatabaseName(t, "runner")})
	runner.Register(Kind, NewJob(e.svc))
	rctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = runner.Run(rctx) }()
	j, err := js.Create(context.Background(), jobs.Job{Tenant: tenant, ID: jobs.NewID(), Kind: Kind,
		Params: json.RawMessage(`{"period":"2026-11"}`), CreatedBy: "test"})
	if err != nil {
		cancel()
		<-stopped
		t.Fatal(err)
	}
	runner.Wake()
	return js, j, func() { cancel(); <-stopped }
}

// waitJob polls the job's row (with a deadline) until it has status want.
func (e *env) waitJob(t *testing.T, js *jobs.Store, j jobs.Job, want jobs.Status) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for j.Status != want {
		if j.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("job %+v, want %s", j, want)
		}
		time.Sleep(50 * time.Millisecond) // polling the job's row for the event, with a deadline
		var err error
		if j, err = js.Get(context.Background(), j.Tenant, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

// runJob runs a billing run job of the tenant's November to status want.
func (e *env) runJob(t *testing.T, tenant string, want jobs.Status) jobs.Job {
	t.Helper()
	js, j, stop := e.startJob(t, tenant)
	defer stop()
	return e.waitJob(t, js, j, want)
}

// A billing run job started while the aggregator has not stored November's
// records waits (the wait reports the aggregator behind while the job is
// still running, and nothing is written), then completes once the
// aggregator stored them and committed: the draft has the month's 12,063
// JPY.
func TestRunJobWaitsForTheAggregator(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	p := newPipeline(t)
	evs := november("acme")
	p.produce(t, p.raw, evs)
	p.consume(t, p.dedupe, p.raw, len(evs), func([]schemas.UsageEvent) {})
	p.produce(t, p.accepted, evs)
	e.svc.o.Watermark = p.watermark(2 * time.Minute)
	js, j, stop := e.startJob(t, "acme")
	defer stop()
	deadline := time.Now().Add(2 * time.Minute)
	for waiting := false; !waiting; {
		select {
		case b := <-p.behind:
			if len(b) == 0 || !strings.Contains(b[0], "group "+p.aggregator+" is behind on "+p.accepted) {
				t.Fatalf("the wait reported %q", b)
			}
			waiting = true
			continue
		default:
		}
		got, err := js.Get(ctx, "acme", j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Final() {
			t.Fatalf("the job ended (%s) without waiting for the aggregator", got.Status)
		}
		if time.Now().After(deadline) {
			t.Fatal("the job did not report waiting within 2 minutes")
		}
		time.Sleep(20 * time.Millisecond) // polling the job's row and the wait's report, with a deadline
	}
	if e.receivableOrNil("acme", "2026-11") != nil {
		t.Fatal("a draft was written while the aggregator was behind")
	}
	p.consume(t, p.aggregator, p.accepted, len(evs), func(b []schemas.UsageEvent) { e.storeRecords(b...) })
	e.waitJob(t, js, j, jobs.StatusCompleted)
	if got := e.receivable("acme", "2026-11"); got.Status != "draft" || !got.Total.Equal(dec("12063")) {
		t.Fatalf("draft %s %s, want 12063", got.Status, got.Total)
	}
}

// A billing run job whose pipeline is caught up stores the end offsets it
// waited for with the run: one per partition with records, per group.
func TestRunStoresTheOffsetsItWaitedFor(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.loadCatalogue("acme")
	p := newPipeline(t)
	evs := november("acme")
	p.produce(t, p.raw, evs)
	p.consume(t, p.dedupe, p.raw, len(evs), func([]schemas.UsageEvent) {})
	p.produce(t, p.accepted, evs)
	p.consume(t, p.aggregator, p.accepted, len(evs), func(b []schemas.UsageEvent) { e.storeRecords(b...) })
	e.svc.o.Watermark = p.watermark(2 * time.Minute)
	j := e.runJob(t, "acme", jobs.StatusCompleted)
	row, err := e.store.GetRun(ctx, "acme", j.ID)
	if err != nil || row == nil || row.Status != "completed" {
		t.Fatalf("stored run %+v %v", row, err)
	}
	sums := map[string]int64{}
	for _, pin := range row.Pins {
		sums[pin.Group+" "+pin.Topic] += pin.Offset
	}
	want := map[string]int64{p.dedupe + " " + p.raw: int64(len(evs)), p.aggregator + " " + p.accepted: int64(len(evs))}
	if fmt.Sprint(sums) != fmt.Sprint(want) {
		t.Errorf("stored offsets %+v: sums %v, want %v", row.Pins, sums, want)
	}
	if got := e.receivable("acme", "2026-11"); !got.Total.Equal(dec("12063")) {
		t.Errorf("the run's draft: %s, want 12063", got.Total)
	}
}

// A broker that does not answer is asked again until the timeout, then the
// wait fails as lagging, naming what it could not pin.
func TestWatermarkWithoutABroker(t *testing.T) {
	testenv.Need(t)
	w := &Watermark{Client: &kafka.Client{Addr: kafka.TCP("127.0.0.1:1"), Timeout: time.Second},
		Steps: [][]StageGroup{{{Group: "g", Topics: []string{"t"}}}}, Timeout: time.Second, Poll: 50 * time.Millisecond}
	_, err := w.Wait(context.Background())
	if !errors.Is(err, ErrLagging) || !strings.Contains(err.Error(), "pinning the end offsets of t") {
		t.Fatalf("err = %v, want ErrLagging naming the topic", err)
	}
}
