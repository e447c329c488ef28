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

// Stage prices batches of accepted records and corrections.
type Stage struct {
	prices      *PriceList
	corrections CorrectionPricer
	producer    Producer
	metrics     *stream.Metrics
	now         func() time.Time
}

// NewStage returns the rating stage; corrections are priced by the price
// list too (per-unit: the record's line negated or added again).
func NewStage(pl *PriceList, p Producer, m *stream.Metrics) *Stage {
	return &Stage{prices: pl, corrections: pl, producer: p, metrics: m, now: time.Now}
}

// HandleBatch prices every record and writes each outcome, acknowledged. A
// correction (a usage.accepted message with the correction header) yields its
// correction lines on usage.rated and then its status change on
// usage.status, all in the same acknowledged write.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	now := s.now().UTC()
	out := make([]kafka.Message, 0, len(msgs))
	var rated, unratedN, corrections, unpriced int
	for _, m := range msgs {
		if schemas.IsCorrection(&m) {
			corr, priced, err := s.correct(m, now)
			if err != nil {
				return err
			}
			out = append(out, corr...)
			if priced {
				corrections++
			} else {
				unpriced++
			}
			continue
		}
		var ev schemas.UsageEvent
		var value []byte
		var err error
		topic := schemas.TopicRated
		if jerr := json.Unmarshal(m.Value, &ev); jerr != nil {
			topic = schemas.TopicUnrated
			value, err = json.Marshal(malformed(m, "record is not a usage event: "+jerr.Error(), "accepted", now))
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
		out = append(out, kafka.Message{Topic: topic, Key: m.Key, Value: value, Time: m.Time})
	}
	if err := s.producer.WriteMessages(ctx, out...); err != nil {
		s.metrics.Errors.WithLabelValues(StageName, "kafka_write").Inc()
		return fmt.Errorf("rater: write outputs: %w", err)
	}
	s.metrics.Records.WithLabelValues(StageName, "rated").Add(float64(rated))
	s.metrics.Records.WithLabelValues(StageName, "unrated").Add(float64(unratedN))
	if corrections+unpriced > 0 {
		s.metrics.Records.WithLabelValues(StageName, "correction").Add(float64(corrections))
		s.metrics.Records.WithLabelValues(StageName, "correction_unpriced").Add(float64(unpriced))
	}
	for _, m := range msgs {
		s.metrics.EndToEnd.WithLabelValues(StageName).Observe(now.Sub(m.Time).Seconds())
	}
	return nil
}

// correct prices one correction message into its output messages: the
// correction lines, then the status change; priced tells whether it had
// lines. A record that has no price (it was unrated) changes status without
// lines. A correction that cannot be read is parked in usage.unrated like any
// malformed record.
func (s *Stage) correct(m kafka.Message, now time.Time) (out []kafka.Message, priced bool, err error) {
	var c schemas.Correction
	bad := json.Unmarshal(m.Value, &c)
	if bad == nil {
		bad = c.Validate()
	}
	if bad != nil {
		value, err := json.Marshal(malformed(m, "correction is not valid: "+bad.Error(), "correction", now))
		if err != nil {
			return nil, false, fmt.Errorf("rater: encode: %w", err)
		}
		return []kafka.Message{{Topic: schemas.TopicUnrated, Key: m.Key, Value: value, Time: m.Time}}, false, nil
	}
	o := s.corrections.PriceCorrection(&c, now)
	out = make([]kafka.Message, 0, len(o.Lines)+1)
	st := schemas.StatusChange{Event: c.Event, Generation: c.Generation, Action: c.Action,
		Status: schemas.StatusForGeneration(c.Generation), Reason: c.Reason, Actor: c.Actor,
		RequestedAt: c.RequestedAt, AppliedAt: now, Priced: len(o.Lines) > 0}
	for i := range o.Lines {
		value, err := json.Marshal(&o.Lines[i])
		if err != nil {
			return nil, false, fmt.Errorf("rater: encode: %w", err)
		}
		out = append(out, kafka.Message{Topic: schemas.TopicRated, Key: m.Key, Value: value, Time: m.Time})
		st.Lines = append(st.Lines, o.Lines[i].LineID)
	}
	value, err := json.Marshal(&st)
	if err != nil {
		return nil, false, fmt.Errorf("rater: encode: %w", err)
	}
	return append(out, kafka.Message{Topic: schemas.TopicStatus, Key: m.Key, Value: value, Time: m.Time}), st.Priced, nil
}

// malformed parks a message that cannot be read, with its raw bytes, under
// an id naming its position (prefix:partition:offset).
func malformed(m kafka.Message, reason, prefix string, now time.Time) *schemas.Unrated {
	return &schemas.Unrated{ReasonCode: schemas.ReasonMalformed, Reason: reason, Stage: StageName, Raw: string(m.Value), At: now,
		Event: schemas.UsageEvent{ID: fmt.Sprintf("%s:%d:%d", prefix, m.Partition, m.Offset), ReceivedAt: m.Time}}
}
