package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// Message is one record as a stage sees it, whatever carried it: its key,
// value and headers, the time it was produced with (ingest's receive time),
// and where it was read (topic, partition, offset), which outputs leave
// empty.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Time      time.Time
}

// Header is one header of a Message: a key and its bytes. It is the same
// type as the Kafka client's, so that the wire-contract helpers of schemas
// (which build and read headers) apply to a Message without copying.
type Header = kafka.Header

// fromKafka is the Message of a fetched record; it shares its bytes.
func fromKafka(m *kafka.Message) Message {
	return Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time}
}

// toKafka is the record to produce for an output Message: its topic, key,
// value, headers and time (the partition is the writer's choice).
func toKafka(m *Message) kafka.Message {
	return kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time}
}

// Producer writes messages that each name their topic and returns once all
// of them are acknowledged (a *kafka.Writer from NewWriter). Every stage
// writes through it, and so do the components that produce outside a stage
// (fixed fees).
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Runner runs one stage's logic over the batches the consumer loop hands it,
// in the shape of a Benthos processor: it decodes every message with Decode,
// parks the ones that do not decode (on usage.unrated, with the decode error
// as the reason, under the id "<ParkPrefix>:<partition>:<offset>"), hands the
// batch to Process, writes the outputs Process emitted through Producer,
// acknowledged, and only then reports the batch done, so the consumer
// commits its offsets after every output is stored. It keeps the stage's
// metrics: records by outcome, records parked, ingest-to-handled latency,
// and failed attempts by kind.
//
// A Runner is a value built per batch or once; it holds no state between
// batches. Stage, Metrics, Decode and Process are required.
type Runner[T any] struct {
	// Stage labels the metrics, and names the stage in parked records.
	Stage string
	// Decode reads one message. An error parks the message; its text is
	// the parked record's reason.
	Decode func(m *Message) (T, error)
	// Process is the stage's logic over one batch: it emits each item's
	// outputs (Batch.Emit), parks items it finds unreadable later
	// (Batch.Park), counts outcomes (Batch.Count) and may write the outputs
	// emitted so far before a step that must follow them (Batch.Flush). An
	// error fails the batch: nothing is counted, the batch is not committed
	// and the consumer hands it again.
	Process func(ctx context.Context, b *Batch[T]) error
	// Producer writes the outputs. Nil for a stage that stores its outcomes
	// itself (the aggregator, which reads usage.unrated and so must not
	// park on it): parked items are then only handed to Process, in
	// Item.Parked, and Emit is not allowed.
	Producer Producer
	// ParkPrefix names a parked message's id prefix; the message's topic
	// when nil.
	ParkPrefix func(m *Message) string
	// Metrics receives the stage's series; required.
	Metrics *Metrics
	// Now is the batch's clock (Batch.Now is its UTC time); clock.Now when
	// nil.
	Now func() time.Time
}

// Item is one message of a batch and what it decoded into.
type Item[T any] struct {
	Msg Message
	// Value is the decoded message; the zero T when the item is parked.
	Value T
	// Parked is the record the item was parked as, nil while it is not.
	// A parked item has its output already: Process skips it (and may
	// count it).
	Parked *schemas.Unrated
}

// Batch is one batch of a stage's input, decoded, and the outputs the
// stage emitted for it.
type Batch[T any] struct {
	// Items are the batch's messages in the order they were read.
	Items []Item[T]
	// Now is the time the batch is handled at, in UTC.
	Now time.Time

	r        *Runner[T]
	out      [][]Message // per item, emitted and not yet written
	from, to int         // the items whose outputs are not yet written
	counts   map[string]int
	parked   int
	err      error // a parked record that could not be encoded
}

// stageError is an error of a named kind, counted by the runner in
// kakin_stage_errors_total{stage, kind}.
type stageError struct {
	kind string
	err  error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// Fail marks err as a failure of kind (redis, clickhouse, state_load…): when
// Process returns it, however wrapped, the runner counts it in
// kakin_stage_errors_total{stage, kind}. Its text is err's.
func Fail(kind string, err error) error {
	if err == nil {
		return nil
	}
	return &stageError{kind: kind, err: err}
}

// KindWrite is the error kind of a failed write of a stage's outputs.
const KindWrite = "kafka_write"

// HandleBatch runs the stage over one batch; it is the consumer loop's
// BatchHandler. It returns nil only when every output is acknowledged.
func (r Runner[T]) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	now := clock.Now
	if r.Now != nil {
		now = r.Now
	}
	b := &Batch[T]{Items: make([]Item[T], len(msgs)), Now: now().UTC(), r: &r}
	if r.Producer != nil {
		b.out = make([][]Message, len(msgs))
	}
	for i := range msgs {
		it := &b.Items[i]
		it.Msg = fromKafka(&msgs[i])
		v, err := r.Decode(&it.Msg)
		if err != nil {
			b.Park(i, err)
			continue
		}
		it.Value = v
	}
	err := r.Process(ctx, b)
	if err == nil {
		err = b.Flush(ctx)
	}
	if err == nil {
		err = b.err
	}
	if err != nil {
		var se *stageError
		if errors.As(err, &se) {
			r.Metrics.Errors.WithLabelValues(r.Stage, se.kind).Inc()
		}
		return err
	}
	for outcome, n := range b.counts {
		r.Metrics.Records.WithLabelValues(r.Stage, outcome).Add(float64(n))
	}
	if b.parked > 0 {
		r.Metrics.Parked.WithLabelValues(r.Stage).Add(float64(b.parked))
	}
	endToEnd := r.Metrics.EndToEnd.WithLabelValues(r.Stage)
	for i := range b.Items {
		endToEnd.Observe(b.Now.Sub(b.Items[i].Msg.Time).Seconds())
	}
	return nil
}

// Emit adds outputs of item i; they are written, in item order, by the
// next Flush or when Process returns. A stage without a Producer must not
// emit.
func (b *Batch[T]) Emit(i int, msgs ...Message) {
	if len(msgs) == 0 {
		return
	}
	if b.out == nil {
		panic("stream: Emit by stage " + b.r.Stage + ", which has no producer")
	}
	b.out[i] = append(b.out[i], msgs...)
	b.pending(i)
}

func (b *Batch[T]) pending(i int) {
	if b.from == b.to {
		b.from, b.to = i, i+1
		return
	}
	b.from, b.to = min(b.from, i), max(b.to, i+1)
}

// Park parks item i, which cannot be read: a malformed_record on
// usage.unrated with its raw bytes, err's text as the reason, and the id
// "<prefix>:<partition>:<offset>" (see Runner.ParkPrefix), so that it is
// visible instead of lost. It replaces any output emitted for the item.
// Decode failures are parked before Process runs; Process parks what it
// finds unreadable later.
func (b *Batch[T]) Park(i int, err error) {
	it := &b.Items[i]
	var zero T
	it.Value = zero
	m := &it.Msg
	prefix := m.Topic
	if b.r.ParkPrefix != nil {
		prefix = b.r.ParkPrefix(m)
	}
	u := &schemas.Unrated{ReasonCode: schemas.ReasonMalformed, Reason: err.Error(), Stage: b.r.Stage,
		Raw: string(m.Value), At: b.Now}
	u.Event.ID = fmt.Sprintf("%s:%d:%d", prefix, m.Partition, m.Offset)
	u.Event.ReceivedAt = m.Time
	if it.Parked == nil {
		b.parked++
	}
	it.Parked = u
	if b.out == nil {
		return
	}
	b.out[i] = append(b.out[i][:0], Message{Topic: schemas.TopicUnrated, Key: m.Key, Value: schemas.MarshalUnrated(u), Time: m.Time})
	b.pending(i)
}

// Parked returns how many items of the batch are parked.
func (b *Batch[T]) Parked() int { return b.parked }

// Count adds n records of outcome to kakin_stage_records_total{stage,
// outcome}, once the batch succeeded. A count of 0 still makes the series.
func (b *Batch[T]) Count(outcome string, n int) {
	if b.counts == nil {
		b.counts = map[string]int{}
	}
	b.counts[outcome] += n
}

// Flush writes the outputs emitted and not yet written, in item order, and
// returns once all are acknowledged. A stage flushes before a step that
// must come after its outputs are stored (the rater's running-state save);
// the runner flushes what remains when Process returns. A failed write is a
// failure of kind KindWrite; the outputs stay pending.
func (b *Batch[T]) Flush(ctx context.Context) error {
	if b.from == b.to {
		return nil
	}
	n := 0
	for i := b.from; i < b.to; i++ {
		n += len(b.out[i])
	}
	out := make([]kafka.Message, 0, n)
	for i := b.from; i < b.to; i++ {
		for j := range b.out[i] {
			out = append(out, toKafka(&b.out[i][j]))
		}
	}
	if err := b.r.Producer.WriteMessages(ctx, out...); err != nil {
		return Fail(KindWrite, fmt.Errorf("%s: write outputs: %w", b.r.Stage, err))
	}
	for i := b.from; i < b.to; i++ {
		b.out[i] = nil
	}
	b.from, b.to = 0, 0
	return nil
}
