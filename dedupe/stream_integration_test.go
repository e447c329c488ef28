package dedupe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// streamRun is one dedupe "process": a stage with its own Redis connection
// and metrics, fed by the consumer-group loop from a test's raw topic.
type streamRun struct {
	reg    *prometheus.Registry
	stage  *Stage
	cancel context.CancelFunc
	done   chan error
	rdb    *redis.Client
}

func startStream(t *testing.T, topic, group string) *streamRun {
	t.Helper()
	w := stream.NewWriter(env.brokers, "")
	t.Cleanup(func() { w.Close() })
	r := &streamRun{reg: prometheus.NewRegistry(), done: make(chan error, 1),
		rdb: redis.NewClient(&redis.Options{Addr: env.redis.Addr, MaxRetries: 1})}
	m := stream.NewMetrics(r.reg)
	r.stage = NewStage(NewClaimStore(r.rdb), w, m, Options{Windows: FixedWindow(time.Hour), Registerer: r.reg})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	cfg := stream.ConsumerConfig{Stage: StageName, Brokers: env.brokers, Group: group, Topics: []string{topic},
		MaxBatch: 20, MaxWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m}
	go func() { r.done <- stream.Consume(ctx, cfg, r.stage.HandleBatch) }()
	return r
}

func (r *streamRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("consumer: %v", err)
	}
	r.rdb.Close()
}

func (r *streamRun) gauge(name string) float64 {
	switch name {
	case "up":
		return testutil.ToFloat64(r.stage.health.up)
	case "since":
		return testutil.ToFloat64(r.stage.health.blockedSince)
	}
	panic(name)
}

// outcome is what the stage made of the test tenant's records so far.
type outcome struct {
	accepted   map[string]schemas.UsageEvent // by event id; a redelivery adds nothing
	acceptedBy map[string]int                // distinct accepted payloads per id
	duplicates map[string]schemas.Duplicate  // by the duplicate's own raw position
}

func outcomes(t *testing.T, since offsets, tenant string) outcome {
	t.Helper()
	o := outcome{accepted: map[string]schemas.UsageEvent{}, acceptedBy: map[string]int{}, duplicates: map[string]schemas.Duplicate{}}
	out := readSince(t, since)
	seen := map[string]bool{}
	for _, m := range out[schemas.TopicAccepted] {
		var e schemas.UsageEvent
		mustDecode(t, m.Value, &e)
		if e.Tenant != tenant {
			continue
		}
		if !seen[string(m.Value)] {
			seen[string(m.Value)] = true
			o.acceptedBy[e.ID]++
		}
		o.accepted[e.ID] = e
	}
	for _, m := range out[schemas.TopicDuplicates] {
		var d schemas.Duplicate
		mustDecode(t, m.Value, &d)
		if d.Event.Tenant == tenant {
			o.duplicates[fmt.Sprintf("%d/%d", d.Self.Partition, d.Self.Offset)] = d
		}
	}
	return o
}

// TestStageStream runs the stage as the pipeline does (consumer-group loop,
// real broker, real Redis) through a restart of the stage and a Redis outage
// in the middle of the stream:
//
//   - repeats are flagged across batches and across a restart of the stage
//     (a new instance with a new Redis connection knows the earlier claims);
//   - while Redis is down the stage writes nothing, its metrics say it is
//     blocked and since when, and it resumes by itself once Redis is back;
//   - every record ends accepted exactly once or flagged against the right
//     first record, none both.
func TestStageStream(t *testing.T) {
	needServers(t)
	ctx := context.Background()
	tenant := newTenant("stream")
	topic, group := "raw-"+tenant, "dedupe-"+tenant
	if err := stream.CreateTopics(ctx, env.brokers, []stream.TopicSpec{{Name: topic, Partitions: partitions, RetentionMS: -1}}); err != nil {
		t.Fatal(err)
	}
	producer := stream.NewWriter(env.brokers, topic)
	defer producer.Close()
	received := clock.Now().UTC()
	eventTime := received.Truncate(time.Hour)
	var sent []schemas.UsageEvent
	produce := func(ids []string, qty string) {
		t.Helper()
		msgs := make([]kafka.Message, len(ids))
		for i, id := range ids {
			received = received.Add(time.Millisecond) // every record's bytes differ
			e := schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c" + id[len(id)-1:], Element: "api_calls",
				Quantity: decimal.RequireFromString(qty), Time: eventTime, ReceivedAt: received}
			v, err := json.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = kafka.Message{Key: e.PartitionKey(), Value: v, Time: received}
			sent = append(sent, e)
		}
		if err := producer.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(prefix string, from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	before := endOffsets(t)
	waitFor := func(what string, cond func(o outcome) bool) outcome {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			o := outcomes(t, before, tenant)
			if cond(o) {
				return o
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %d ids accepted, %d duplicates", what, len(o.accepted), len(o.duplicates))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	counts := func(accepted, duplicates int) func(o outcome) bool {
		return func(o outcome) bool { return len(o.accepted) >= accepted && len(o.duplicates) >= duplicates }
	}

	// Phase 1: ids a00..a19 and, in later batches, repeats of a00..a04.
	first := startStream(t, topic, group)
	produce(ids("a", 0, 20), "1")
	produce(ids("a", 0, 5), "1")
	waitFor("phase 1", counts(20, 5))
	first.stop(t) // the stage restarts

	// Phase 2: a new instance flags repeats of what the first one claimed.
	second := startStream(t, topic, group)
	defer func() {
		if second != nil {
			second.stop(t)
		}
	}()
	produce(ids("a", 5, 10), "2") // repeats with another payload
	produce(ids("b", 0, 10), "1")
	waitFor("phase 2", counts(30, 10))

	// Phase 3: Redis stops mid-stream (SIGTERM: with appendfsync everysec a
	// SIGKILL could lose the last second or two of claims, which is the
	// "Redis lost its data" case that ClickHouse covers, see e2e).
	if err := env.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = env.redis.Restart(context.Background())
		}
	}()
	killedAt := clock.Now()
	produce(ids("c", 0, 10), "1")
	produce(ids("b", 0, 5), "1")
	deadline := time.Now().Add(20 * time.Second)
	for second.gauge("up") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("kakin_dedupe_redis_up stayed 1 with Redis down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	since := second.gauge("since")
	if since < float64(killedAt.Unix()-1) || since > float64(clock.Now().Unix()+1) {
		t.Errorf("kakin_dedupe_blocked_since_seconds = %v, want the outage's start (~%d)", since, killedAt.Unix())
	}
	blocked := outcomes(t, before, tenant)
	time.Sleep(500 * time.Millisecond)
	if o := outcomes(t, before, tenant); len(o.accepted) != 30 || len(o.duplicates) != 10 || len(blocked.accepted) != 30 {
		t.Fatalf("with Redis down the stage wrote records: %d accepted, %d duplicates; want 30 and 10",
			len(o.accepted), len(o.duplicates))
	}
	if second.gauge("since") != since {
		t.Errorf("blocked-since moved during one outage: %v → %v", since, second.gauge("since"))
	}
	if err := env.redis.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	final := waitFor("phase 3 after Redis is back", counts(40, 15))
	deadline = time.Now().Add(5 * time.Second)
	for second.gauge("up") != 1 || second.gauge("since") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after recovery redis_up=%v blocked_since=%v, want 1 and 0", second.gauge("up"), second.gauge("since"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := testutil.ToFloat64(second.stage.metrics.Errors.WithLabelValues(StageName, "redis")); n < 1 {
		t.Errorf("kakin_stage_errors_total{kind=redis} = %v, want the failed attempts counted", n)
	}
	second.stop(t)
	second = nil

	// Every id's first record is accepted (once: at most one payload per
	// id), and every later record is a duplicate of it.
	firstOf := map[string]schemas.UsageEvent{}
	var repeats []schemas.UsageEvent
	for _, e := range sent {
		if _, ok := firstOf[e.ID]; ok {
			repeats = append(repeats, e)
		} else {
			firstOf[e.ID] = e
		}
	}
	if len(final.accepted) != len(firstOf) || len(final.duplicates) != len(repeats) {
		t.Fatalf("%d ids accepted, %d duplicates; want %d and %d", len(final.accepted), len(final.duplicates), len(firstOf), len(repeats))
	}
	for id, e := range final.accepted {
		if want := firstOf[id]; !e.ReceivedAt.Equal(want.ReceivedAt) || final.acceptedBy[id] != 1 {
			t.Errorf("id %s: accepted the record received %v (%d payloads), want only the first, received %v",
				id, e.ReceivedAt, final.acceptedBy[id], want.ReceivedAt)
		}
	}
	flagged := map[time.Time]bool{}
	for _, d := range final.duplicates {
		orig := firstOf[d.Event.ID]
		if !d.First.ReceivedAt.Equal(orig.ReceivedAt.Truncate(time.Second)) || d.First.PayloadHash != Fingerprint(&orig) {
			t.Errorf("duplicate of %s names first %+v, want the record received %v", d.Event.ID, d.First, orig.ReceivedAt)
		}
		if want := !d.Event.Quantity.Equal(orig.Quantity); d.PayloadDiffers != want {
			t.Errorf("duplicate of %s: payload_differs %v, want %v", d.Event.ID, d.PayloadDiffers, want)
		}
		flagged[d.Event.ReceivedAt] = true
	}
	for _, e := range repeats {
		if !flagged[e.ReceivedAt] {
			t.Errorf("repeat of %s received %v was not flagged", e.ID, e.ReceivedAt)
		}
	}
}
