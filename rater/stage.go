package rater

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// Producer writes messages that each name their topic, acknowledged.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// StageName labels this stage's metrics and logs.
const StageName = "rater"

// Stage prices batches of accepted records and corrections. A tenant whose
// catalogue and contracts are in the admin store is priced by its compiled
// engine with running state (stateful.go); other tenants by the price list
// file, per unit.
type Stage struct {
	prices      *pricelist.List
	corrections CorrectionPricer
	engines     *Engines
	states      States
	history     History
	stored      StoredUpTo
	rerateWait  time.Duration
	producer    Producer
	metrics     *stream.Metrics
	now         func() time.Time
}

// NewStage returns the rating stage; corrections are priced by the price
// list too (per-unit: the record's line negated or added again).
func NewStage(pl *pricelist.List, p Producer, m *stream.Metrics) *Stage {
	return &Stage{prices: pl, corrections: listCorrections{pl}, producer: p, metrics: m, now: clock.Now}
}

// WithEngines prices the tenants engines knows with their catalogue,
// keeping running state in states.
func (s *Stage) WithEngines(engines *Engines, states States) *Stage {
	s.engines, s.states = engines, states
	return s
}

// decoded is one usage.accepted message, read once.
type decoded struct {
	ev   *schemas.UsageEvent
	corr *schemas.Correction
	bad  error // the message is not a valid event or correction
	item *engineItem
}

func decode(m *kafka.Message) decoded {
	if schemas.IsCorrection(m) {
		var c schemas.Correction
		bad := json.Unmarshal(m.Value, &c)
		if bad == nil {
			bad = c.Validate()
		}
		if bad != nil {
			return decoded{bad: fmt.Errorf("correction is not valid: %w", bad)}
		}
		return decoded{ev: &c.Event, corr: &c}
	}
	var ev schemas.UsageEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		return decoded{bad: fmt.Errorf("record is not a usage event: %w", err)}
	}
	return decoded{ev: &ev}
}

// HandleBatch prices every record and writes each outcome, acknowledged. A
// correction (a usage.accepted message with the correction header) yields its
// correction lines on usage.rated and then its status change on
// usage.status, all in the same acknowledged write. Running states change
// only after that write (see rater/runstate).
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	// A re-rate request sees the running state after every record before
	// it: the batch is handled in segments around each request.
	start := 0
	for i := range msgs {
		if schemas.MessageKind(&msgs[i]) != schemas.KindRerate {
			continue
		}
		if err := s.handleSegment(ctx, msgs[start:i]); err != nil {
			return err
		}
		if err := s.rerate(ctx, msgs[i]); err != nil {
			return err
		}
		start = i + 1
	}
	return s.handleSegment(ctx, msgs[start:])
}

func (s *Stage) handleSegment(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := s.now().UTC()
	ds := make([]decoded, len(msgs))
	var states batchStates
	var buf []pricing.Charge
	for i := range msgs {
		d := decode(&msgs[i])
		if d.bad == nil && s.engines != nil {
			if eng := s.engines.Engine(d.ev.Tenant); eng != nil {
				it := &engineItem{msg: msgs[i], ev: d.ev, corr: d.corr}
				if d.corr == nil {
					var err error
					it.rawPartition, it.rawOffset, it.hasRaw, err = schemas.ParseRawPosition(msgs[i].Headers)
					if err != nil {
						// Dedupe named a position the running state cannot
						// trust: park the record rather than risk counting it twice.
						d.bad = fmt.Errorf("record's usage.raw position: %w", err)
						ds[i] = d
						continue
					}
				}
				buf, it.err = eng.Resolve(d.ev, buf)
				if it.err == nil {
					it.charges = append([]pricing.Charge(nil), buf...)
					for j := range it.charges {
						states.add(it.charges[j].Key)
					}
				}
				if d.corr != nil {
					states.addGeneration(d.ev.Tenant, d.ev.ID)
				}
				d.item = it
			}
		}
		ds[i] = d
	}
	if !states.empty() {
		if err := states.load(ctx, s.states); err != nil {
			s.metrics.Errors.WithLabelValues(StageName, "state_load").Inc()
			return fmt.Errorf("rater: %w", err)
		}
	}
	out := make([]kafka.Message, 0, len(msgs))
	counts := map[string]int{}
	for i, d := range ds {
		m := msgs[i]
		var msgsOut []kafka.Message
		var outcome string
		var err error
		switch {
		case d.bad != nil:
			prefix := "accepted"
			if schemas.IsCorrection(&m) {
				prefix = "correction"
			}
			msgsOut, err = unratedMessage(m, malformed(m, d.bad.Error(), prefix, now))
			outcome = "unrated"
		case d.item != nil:
			msgsOut, outcome, err = s.priceWithEngine(&states, d.item, now)
		case d.corr != nil:
			msgsOut, outcome, err = s.correct(m, d.corr, now)
		default:
			msgsOut, outcome, err = s.priceFromList(m, d.ev, now)
		}
		if err != nil {
			return err
		}
		out = append(out, msgsOut...)
		counts[outcome]++
	}
	if len(out) > 0 {
		if err := s.producer.WriteMessages(ctx, out...); err != nil {
			s.metrics.Errors.WithLabelValues(StageName, "kafka_write").Inc()
			return fmt.Errorf("rater: write outputs: %w", err)
		}
	}
	if !states.empty() {
		if err := states.save(ctx, s.states); err != nil {
			s.metrics.Errors.WithLabelValues(StageName, "state_save").Inc()
			return fmt.Errorf("rater: %w", err)
		}
	}
	for outcome, n := range counts {
		s.metrics.Records.WithLabelValues(StageName, outcome).Add(float64(n))
	}
	for _, m := range msgs {
		s.metrics.EndToEnd.WithLabelValues(StageName).Observe(now.Sub(m.Time).Seconds())
	}
	return nil
}

// priceFromList prices an event per unit from the price list file.
func (s *Stage) priceFromList(m kafka.Message, ev *schemas.UsageEvent, now time.Time) ([]kafka.Message, string, error) {
	o := s.prices.Rate(ev, now)
	if o.Line == nil {
		out, err := unratedMessage(m, o.Unrated)
		return out, "unrated", err
	}
	value, err := json.Marshal(o.Line)
	if err != nil {
		return nil, "", fmt.Errorf("rater: encode: %w", err)
	}
	return []kafka.Message{{Topic: schemas.TopicRated, Key: m.Key, Value: value, Time: m.Time}}, "rated", nil
}

func unratedMessage(m kafka.Message, u *schemas.Unrated) ([]kafka.Message, error) {
	value, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("rater: encode: %w", err)
	}
	return []kafka.Message{{Topic: schemas.TopicUnrated, Key: m.Key, Value: value, Time: m.Time}}, nil
}

// correct prices a correction of a price-list tenant into its output
// messages: the correction lines, then the status change. A record that has
// no price (it was unrated) changes status without lines.
func (s *Stage) correct(m kafka.Message, c *schemas.Correction, now time.Time) ([]kafka.Message, string, error) {
	o := s.corrections.PriceCorrection(c, now)
	out, err := correctionMessages(m, c, o.Lines, now)
	if len(o.Lines) == 0 {
		return out, "correction_unpriced", err
	}
	return out, "correction", err
}

// correctionMessages renders a correction's lines followed by its status
// change.
func correctionMessages(m kafka.Message, c *schemas.Correction, lines []schemas.RatedLine, now time.Time) ([]kafka.Message, error) {
	out := make([]kafka.Message, 0, len(lines)+1)
	st := schemas.StatusChange{Event: c.Event, Generation: c.Generation, Action: c.Action,
		Status: schemas.StatusForGeneration(c.Generation), Reason: c.Reason, Actor: c.Actor,
		RequestedAt: c.RequestedAt, AppliedAt: now, Priced: len(lines) > 0}
	for i := range lines {
		value, err := json.Marshal(&lines[i])
		if err != nil {
			return nil, fmt.Errorf("rater: encode: %w", err)
		}
		out = append(out, kafka.Message{Topic: schemas.TopicRated, Key: m.Key, Value: value, Time: m.Time})
		st.Lines = append(st.Lines, lines[i].LineID)
	}
	value, err := json.Marshal(&st)
	if err != nil {
		return nil, fmt.Errorf("rater: encode: %w", err)
	}
	return append(out, kafka.Message{Topic: schemas.TopicStatus, Key: m.Key, Value: value, Time: m.Time}), nil
}

// malformed parks a message that cannot be read, with its raw bytes, under
// an id naming its position (prefix:partition:offset).
func malformed(m kafka.Message, reason, prefix string, now time.Time) *schemas.Unrated {
	return &schemas.Unrated{ReasonCode: schemas.ReasonMalformed, Reason: reason, Stage: StageName, Raw: string(m.Value), At: now,
		Event: schemas.UsageEvent{ID: fmt.Sprintf("%s:%d:%d", prefix, m.Partition, m.Offset), ReceivedAt: m.Time}}
}
