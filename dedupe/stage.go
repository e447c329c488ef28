package dedupe

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

// Stage sorts raw records into first-seen and duplicates.
type Stage struct {
	claims   *ClaimStore
	producer Producer
	metrics  *stream.Metrics
	now      func() time.Time
}

// NewStage returns the dedupe stage.
func NewStage(claims *ClaimStore, p Producer, m *stream.Metrics) *Stage {
	return &Stage{claims: claims, producer: p, metrics: m, now: time.Now}
}

// StageName labels this stage's metrics and logs.
const StageName = "dedupe"

// HandleBatch claims every record of the batch in one Redis round trip, then
// writes each record to exactly one output topic. It returns nil only when all
// outputs are acknowledged, so the batch may then be committed.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	now := s.now().UTC()
	events := make([]schemas.UsageEvent, len(msgs))
	reqs := make([]ClaimRequest, 0, len(msgs))
	reqIdx := make([]int, 0, len(msgs))
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &events[i]); err != nil || events[i].Tenant == "" || events[i].ID == "" {
			out[i] = malformed(m, now, err)
			continue
		}
		reqs = append(reqs, ClaimRequest{Tenant: events[i].Tenant, ID: events[i].ID, Claim: schemas.Claim{
			Partition: m.Partition, Offset: m.Offset,
			PayloadHash: schemas.PayloadHash(&events[i]), ReceivedAt: events[i].ReceivedAt,
		}})
		reqIdx = append(reqIdx, i)
	}
	held, err := s.claims.Claim(ctx, reqs)
	if err != nil {
		s.metrics.Errors.WithLabelValues(StageName, "redis").Inc()
		return err
	}
	var accepted, duplicates int
	for j, i := range reqIdx {
		m, own := msgs[i], reqs[j].Claim
		first := held[j]
		if first.Partition == own.Partition && first.Offset == own.Offset {
			// This record holds the claim (now, or from before a redelivery).
			out[i] = kafka.Message{Topic: schemas.TopicAccepted, Key: m.Key, Value: m.Value, Time: m.Time}
			accepted++
			continue
		}
		dup := schemas.Duplicate{Event: events[i], Self: own, First: first,
			PayloadDiffers: first.PayloadHash != own.PayloadHash, DetectedAt: now}
		value, err := json.Marshal(&dup)
		if err != nil {
			return fmt.Errorf("encode duplicate: %w", err)
		}
		out[i] = kafka.Message{Topic: schemas.TopicDuplicates, Key: m.Key, Value: value, Time: m.Time}
		duplicates++
	}
	if err := s.producer.WriteMessages(ctx, out...); err != nil {
		s.metrics.Errors.WithLabelValues(StageName, "kafka_write").Inc()
		return fmt.Errorf("dedupe: write outputs: %w", err)
	}
	s.metrics.Records.WithLabelValues(StageName, "accepted").Add(float64(accepted))
	s.metrics.Records.WithLabelValues(StageName, "duplicate").Add(float64(duplicates))
	if bad := len(msgs) - len(reqs); bad > 0 {
		s.metrics.Records.WithLabelValues(StageName, "malformed").Add(float64(bad))
	}
	for _, m := range msgs {
		s.metrics.EndToEnd.WithLabelValues(StageName).Observe(now.Sub(m.Time).Seconds())
	}
	return nil
}

// malformed parks a record that cannot be read in usage.unrated, with its raw
// bytes, so that it is visible instead of lost.
func malformed(m kafka.Message, now time.Time, err error) kafka.Message {
	reason := "record is not a usage event"
	if err != nil {
		reason += ": " + err.Error()
	}
	u := schemas.Unrated{ReasonCode: schemas.ReasonMalformed, Reason: reason, Stage: StageName,
		Raw: string(m.Value), At: now}
	u.Event.ID = fmt.Sprintf("raw:%d:%d", m.Partition, m.Offset)
	u.Event.ReceivedAt = m.Time
	value, _ := json.Marshal(&u)
	return kafka.Message{Topic: schemas.TopicUnrated, Key: m.Key, Value: value, Time: m.Time}
}
