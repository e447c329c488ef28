package rater

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// Producer writes messages that each name their topic, acknowledged.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// StageName labels this stage's metrics and logs.
const StageName = "rater"

// Stage prices batches of accepted records.
type Stage struct {
	prices   *PriceList
	producer Producer
	metrics  *stream.Metrics
	now      func() time.Time
}

// NewStage returns the rating stage.
func NewStage(pl *PriceList, p Producer, m *stream.Metrics) *Stage {
	return &Stage{prices: pl, producer: p, metrics: m, now: time.Now}
}

// HandleBatch prices every record and writes each outcome, acknowledged.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	now := s.now().UTC()
	out := make([]kafka.Message, len(msgs))
	var rated, unratedN int
	for i, m := range msgs {
		var ev schemas.UsageEvent
		var value []byte
		var err error
		topic := schemas.TopicRated
		if jerr := json.Unmarshal(m.Value, &ev); jerr != nil {
			topic = schemas.TopicUnrated
			value, err = json.Marshal(&schemas.Unrated{ReasonCode: schemas.ReasonMalformed,
				Reason: "record is not a usage event: " + jerr.Error(), Stage: StageName, Raw: string(m.Value), At: now,
				Event: schemas.UsageEvent{ID: fmt.Sprintf("accepted:%d:%d", m.Partition, m.Offset), ReceivedAt: m.Time}})
			unratedN++
		} else if o := s.prices.Rate(&ev, now); o.Line != nil {
			value, err = json.Marshal(o.Line)
			rated++
		} else {
			topic = schemas.TopicUnrated
			value, err = json.Marshal(o.Unrated)
			unratedN++
		}
		if err != nil {
			return fmt.Errorf("rater: encode: %w", err)
		}
		out[i] = kafka.Message{Topic: topic, Key: m.Key, Value: value, Time: m.Time}
	}
	if err := s.producer.WriteMessages(ctx, out...); err != nil {
		s.metrics.Errors.WithLabelValues(StageName, "kafka_write").Inc()
		return fmt.Errorf("rater: write outputs: %w", err)
	}
	s.metrics.Records.WithLabelValues(StageName, "rated").Add(float64(rated))
	s.metrics.Records.WithLabelValues(StageName, "unrated").Add(float64(unratedN))
	for _, m := range msgs {
		s.metrics.EndToEnd.WithLabelValues(StageName).Observe(now.Sub(m.Time).Seconds())
	}
	return nil
}
