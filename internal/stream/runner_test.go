package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// fakeProducer records what a runner writes; fail, when set, fails the
// write instead.
type fakeProducer struct {
	mu     sync.Mutex
	fail   error
	writes [][]kafka.Message
}

func (p *fakeProducer) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.writes = append(p.writes, append([]kafka.Message(nil), msgs...))
	return nil
}

func (p *fakeProducer) written() []kafka.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []kafka.Message
	for _, w := range p.writes {
		out = append(out, w...)
	}
	return out
}

// upper is a test stage: a value that is a number is parked as
// undecodable, "late" is parked by Process, anything else is written
// upper-cased to topic "out" with its headers.
func upper(m *stream.Message) (string, error) {
	var n int
	if _, err := fmt.Sscan(string(m.Value), &n); err == nil {
		return "", fmt.Errorf("value is a number, %d", n)
	}
	return string(m.Value), nil
}

func upperProcess(_ context.Context, b *stream.Batch[string]) error {
	for i := range b.Items {
		it := &b.Items[i]
		switch {
		case it.Parked != nil:
			b.Count("bad", 1)
		case it.Value == "late":
			b.Park(i, errors.New("late refusal"))
			b.Count("bad", 1)
		default:
			b.Emit(i, stream.Message{Topic: "out", Key: it.Msg.Key, Value: bytes.ToUpper(it.Msg.Value),
				Headers: it.Msg.Headers, Time: it.Msg.Time})
			b.Count("ok", 1)
		}
	}
	return nil
}

// TestRunner: the runner decodes, parks what does not decode on
// usage.unrated with the reason, writes the outputs in order and counts;
// a failed write or Process fails the batch (the consumer then commits
// nothing and hands it again) and counts nothing but the error.
func TestRunner(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	in := func(offset int64, value string) kafka.Message {
		return kafka.Message{Topic: "in", Partition: 2, Offset: offset, Key: []byte("k"), Value: []byte(value),
			Time: at.Add(-time.Second), Headers: []kafka.Header{{Key: "h", Value: []byte(value)}}}
	}
	type parked struct{ id, reason string }
	for _, tt := range []struct {
		name      string
		batch     []kafka.Message
		writeErr  error
		procErr   error
		wantErr   string
		wantKind  string // counted in kakin_stage_errors_total
		wantOut   []string
		wantPark  []parked
		wantCount map[string]float64
	}{
		{name: "all decode", batch: []kafka.Message{in(1, "a"), in(2, "b")},
			wantOut: []string{"out:A", "out:B"}, wantCount: map[string]float64{"ok": 2}},
		{name: "decode failure parked with reason, in place", batch: []kafka.Message{in(1, "a"), in(2, "42"), in(3, "c")},
			wantOut:   []string{"out:A", schemas.TopicUnrated + ":", "out:C"},
			wantPark:  []parked{{"in:2:2", "value is a number, 42"}},
			wantCount: map[string]float64{"ok": 2, "bad": 1}},
		{name: "parked by the stage", batch: []kafka.Message{in(7, "late")},
			wantOut:   []string{schemas.TopicUnrated + ":"},
			wantPark:  []parked{{"in:2:7", "late refusal"}},
			wantCount: map[string]float64{"bad": 1}},
		{name: "write failure fails the batch", batch: []kafka.Message{in(1, "a"), in(2, "42")},
			writeErr: errors.New("broker gone"), wantErr: "test: write outputs: broker gone", wantKind: stream.KindWrite},
		{name: "process failure fails the batch", batch: []kafka.Message{in(1, "a")},
			procErr: stream.Fail("redis", errors.New("redis down")), wantErr: "redis down", wantKind: "redis"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := stream.NewMetrics(prometheus.NewRegistry())
			p := &fakeProducer{fail: tt.writeErr}
			process := upperProcess
			if tt.procErr != nil {
				process = func(context.Context, *stream.Batch[string]) error { return fmt.Errorf("wrapped: %w", tt.procErr) }
			}
			r := stream.Runner[string]{Stage: "test", Decode: upper, Process: process, Producer: p, Metrics: m,
				Now: func() time.Time { return at }}
			err := r.HandleBatch(context.Background(), tt.batch)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("HandleBatch = %v, want an error with %q", err, tt.wantErr)
				}
				if n := testutil.ToFloat64(m.Errors.WithLabelValues("test", tt.wantKind)); n != 1 {
					t.Errorf("errors{kind=%s} = %v, want 1", tt.wantKind, n)
				}
				if n := testutil.CollectAndCount(m.Records); n != 0 {
					t.Errorf("a failed batch counted %d outcome series, want none", n)
				}
				if n := testutil.CollectAndCount(m.EndToEnd); n != 0 {
					t.Errorf("a failed batch observed latency %d times, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleBatch: %v", err)
			}
			out := p.written()
			var got []string
			var gotPark []parked
			for i, o := range out {
				if o.Topic != schemas.TopicUnrated {
					got = append(got, o.Topic+":"+string(o.Value))
					src := tt.batch[i]
					if string(o.Key) != string(src.Key) || !o.Time.Equal(src.Time) || len(o.Headers) != 1 {
						t.Errorf("output %d lost its key, time or headers: %+v", i, o)
					}
					continue
				}
				got = append(got, o.Topic+":")
				var u schemas.Unrated
				if err := schemas.UnmarshalUnrated(o.Value, &u); err != nil {
					t.Fatal(err)
				}
				if u.ReasonCode != schemas.ReasonMalformed || u.Stage != "test" || u.Raw != string(tt.batch[i].Value) ||
					!u.At.Equal(at) || !u.Event.ReceivedAt.Equal(tt.batch[i].Time) || string(o.Key) != "k" {
					t.Errorf("parked record %+v", u)
				}
				gotPark = append(gotPark, parked{u.Event.ID, u.Reason})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantOut) {
				t.Errorf("outputs %v, want %v", got, tt.wantOut)
			}
			if fmt.Sprint(gotPark) != fmt.Sprint(tt.wantPark) {
				t.Errorf("parked %v, want %v", gotPark, tt.wantPark)
			}
			for outcome, want := range tt.wantCount {
				if n := testutil.ToFloat64(m.Records.WithLabelValues("test", outcome)); n != want {
					t.Errorf("records{outcome=%s} = %v, want %v", outcome, n, want)
				}
			}
			if n := testutil.ToFloat64(m.Parked.WithLabelValues("test")); n != float64(len(tt.wantPark)) {
				t.Errorf("parked = %v, want %d", n, len(tt.wantPark))
			}
			if n := testutil.CollectAndCount(m.EndToEnd); n != 1 {
				t.Errorf("latency series %d, want 1", n)
			}
		})
	}
}

// TestRunnerFlushOrdersOutputsBeforeALaterStep: outputs flushed by Process
// are written before the step after the flush, and the rest when Process
// returns, each once.
func TestRunnerFlushOrdersOutputsBeforeALaterStep(t *testing.T) {
	p := &fakeProducer{}
	var writesAtStep int
	r := stream.Runner[string]{Stage: "test", Decode: upper, Metrics: stream.NewMetrics(prometheus.NewRegistry()), Producer: p,
		Process: func(ctx context.Context, b *stream.Batch[string]) error {
			b.Emit(0, stream.Message{Topic: "out", Value: []byte("first")})
			if err := b.Flush(ctx); err != nil {
				return err
			}
			writesAtStep = len(p.written()) // e.g. the rater's running-state save
			b.Emit(1, stream.Message{Topic: "out", Value: []byte("second")})
			return nil
		}}
	if err := r.HandleBatch(context.Background(), []kafka.Message{{Value: []byte("a")}, {Value: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if writesAtStep != 1 {
		t.Errorf("%d outputs written before the step, want 1", writesAtStep)
	}
	if len(p.writes) != 2 || len(p.written()) != 2 {
		t.Errorf("writes %v, want two writes of one output each", p.writes)
	}
}

// TestRunnerWithoutProducer: a stage that stores its outcomes itself gets
// its undecodable items parked in Item.Parked, nothing written.
func TestRunnerWithoutProducer(t *testing.T) {
	m := stream.NewMetrics(prometheus.NewRegistry())
	var parked []*schemas.Unrated
	r := stream.Runner[string]{Stage: "store", Decode: upper, Metrics: m,
		Process: func(_ context.Context, b *stream.Batch[string]) error {
			for _, it := range b.Items {
				if it.Parked != nil {
					parked = append(parked, it.Parked)
				}
			}
			return nil
		}}
	if err := r.HandleBatch(context.Background(), []kafka.Message{{Topic: "usage.rated", Partition: 1, Offset: 9, Value: []byte("5")}}); err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Event.ID != "usage.rated:1:9" || parked[0].Reason != "value is a number, 5" {
		t.Fatalf("parked %+v", parked)
	}
	if n := testutil.ToFloat64(m.Parked.WithLabelValues("store")); n != 1 {
		t.Errorf("parked = %v, want 1", n)
	}
}

// TestRunnerWriteFailureIsNotCommitted runs a stage through the consumer
// loop against the broker: while its outputs cannot be written nothing is
// committed, and once a write is acknowledged the batch is committed, its
// undecodable records parked on usage.unrated.
func TestRunnerWriteFailureIsNotCommitted(t *testing.T) {
	needKafka(t)
	topic := newTopic(t, 1)
	end := produce(t, topic, 5)
	group := uniqueName(t, "group")
	p := &fakeProducer{fail: errors.New("broker gone")}
	r := stream.Runner[string]{Stage: "test", Decode: func(m *stream.Message) (string, error) {
		if strings.HasSuffix(string(m.Value), "3") {
			return "", errors.New("record 3 is unreadable")
		}
		return string(m.Value), nil
	}, Process: upperProcess, Producer: p, Metrics: stream.NewMetrics(prometheus.NewRegistry())}
	cfg := consumerConfig(group, 100, topic)
	attempts := make(chan struct{}, 100)
	startConsumer(t, cfg, func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error {
			attempts <- struct{}{}
			return r.HandleBatch(ctx, msgs)
		}
	})
	for range 2 { // two failed attempts
		select {
		case <-attempts:
		case <-time.After(30 * time.Second):
			t.Fatal("no attempt at the batch")
		}
	}
	if got := committed(t, group, topic, 1); got[0] > 0 {
		t.Fatalf("committed %v while the outputs could not be written", got)
	}
	p.mu.Lock()
	p.fail = nil
	p.mu.Unlock()
	waitFor(t, 30*time.Second, "the batch committed", func() (bool, string) {
		got := committed(t, group, topic, 1)
		return got[0] == end[0], fmt.Sprint(got)
	})
	var unrated int
	for _, m := range p.written() {
		if m.Topic == schemas.TopicUnrated {
			unrated++
		}
	}
	if unrated != 1 || len(p.written()) < 5 {
		t.Fatalf("wrote %d records, %d parked; want 5, 1 parked", len(p.written()), unrated)
	}
}
