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
	producer    stream.Producer
	metrics     *stream.Metrics
	now         func() time.Time
}

// NewStage returns the rating stage; corrections are priced by the price
// list too (per-unit: the record's line negated or added again).
func NewStage(pl *pricelist.List, p stream.Producer, m *stream.Metrics) *Stage {
	return &Stage{prices: pl, corrections: listCorrections{pl}, producer: p, metrics: m, now: clock.Now}
}

// WithEngines prices the tenants engines knows with their catalogue,
// keeping running state in states.
func (s *Stage) WithEngines(engines *Engines, states States) *Stage {
	s.engines, s.states = engines, states
	return s
}

// decoded is one usage.accepted message, read once: a usage event, a
// correction of one, or a re-rate request.
type decoded struct {
	ev     *schemas.UsageEvent
	corr   *schemas.Correction
	rerate *schemas.Rerate
}

// decode reads a usage.accepted message; an error is the reason it is
// parked.
func decode(m *stream.Message) (decoded, error) {
	switch schemas.HeaderKind(m.Headers) {
	case schemas.KindRerate:
		r, err := decodeRerate(m.Value)
		if err != nil {
			return decoded{}, fmt.Errorf("re-rate request is not valid: %w", err)
		}
		return decoded{rerate: &r}, nil
	case schemas.KindCorrection:
		var c schemas.Correction
		bad := json.Unmarshal(m.Value, &c)
		if bad == nil {
			bad = c.Validate()
		}
		if bad != nil {
			return decoded{}, fmt.Errorf("correction is not valid: %w", bad)
		}
		return decoded{ev: &c.Event, corr: &c}, nil
	}
	var ev schemas.UsageEvent
	if err := schemas.UnmarshalEvent(m.Value, &ev); err != nil {
		return decoded{}, fmt.Errorf("record is not a usage event: %w", err)
	}
	return decoded{ev: &ev}, nil
}

// parkPrefix names a parked message by its kind and position:
// accepted:, correction: or rerate:<partition>:<offset>.
func parkPrefix(m *stream.Message) string {
	switch schemas.HeaderKind(m.Headers) {
	case schemas.KindRerate:
		return "rerate"
	case schemas.KindCorrection:
		return "correction"
	}
	return "accepted"
}

// HandleBatch prices every record and writes each outcome, acknowledged. A
// correction (a usage.accepted message with the correction header) yields its
// correction lines on usage.rated and then its status change on
// usage.status, all in the same acknowledged write. Running states change
// only after that write (see rater/runstate). The stage runner
// (stream.Runner) decodes, parks what it cannot read on usage.unrated,
// writes and counts; process is the stage's own logic.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	return stream.Runner[decoded]{Stage: StageName, Decode: decode, Process: s.process,
		Producer: s.producer, Metrics: s.metrics, Now: s.now, ParkPrefix: parkPrefix}.HandleBatch(ctx, msgs)
}

// process handles a batch in segments around each re-rate request: a
// request sees the running state after every record before it.
func (s *Stage) process(ctx context.Context, b *stream.Batch[decoded]) error {
	start := 0
	for i := range b.Items {
		if schemas.HeaderKind(b.Items[i].Msg.Headers) != schemas.KindRerate {
			continue
		}
		if err := s.handleSegment(ctx, b, start, i); err != nil {
			return err
		}
		if err := s.rerate(ctx, b, i); err != nil {
			return err
		}
		start = i + 1
	}
	return s.handleSegment(ctx, b, start, len(b.Items))
}

// handleSegment prices the items [from, to), writes their outputs and then
// saves the running states they moved.
func (s *Stage) handleSegment(ctx context.Context, b *stream.Batch[decoded], from, to int) error {
	if from == to {
		return nil
	}
	engs := make([]*engineItem, to-from)
	var states batchStates
	var buf []pricing.Charge
	for i := from; i < to; i++ {
		item := &b.Items[i]
		if item.Parked != nil || s.engines == nil {
			continue
		}
		d := item.Value
		eng := s.engines.Engine(d.ev.Tenant)
		if eng == nil {
			continue
		}
		it := &engineItem{msg: item.Msg, ev: d.ev, corr: d.corr}
		if d.corr == nil {
			var err error
			it.rawPartition, it.rawOffset, it.hasRaw, err = schemas.ParseRawPosition(item.Msg.Headers)
			if err != nil {
				// Dedupe named a position the running state cannot
				// trust: park the record rather than risk counting it twice.
				b.Park(i, fmt.Errorf("record's usage.raw position: %w", err))
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
		engs[i-from] = it
	}
	if !states.empty() {
		if err := states.load(ctx, s.states); err != nil {
			return stream.Fail("state_load", fmt.Errorf("rater: %w", err))
		}
	}
	for i := from; i < to; i++ {
		item := &b.Items[i]
		var out []stream.Message
		var outcome string
		var err error
		switch {
		case item.Parked != nil: // its output is the parked record
			outcome = "unrated"
		case engs[i-from] != nil:
			out, outcome, err = s.priceWithEngine(&states, engs[i-from], b.Now)
		case item.Value.corr != nil:
			out, outcome, err = s.correct(item.Msg, item.Value.corr, b.Now)
		default:
			out, outcome, err = s.priceFromList(item.Msg, item.Value.ev, b.Now)
		}
		if err != nil {
			return err
		}
		b.Emit(i, out...)
		b.Count(outcome, 1)
	}
	if err := b.Flush(ctx); err != nil {
		return err
	}
	if !states.empty() {
		if err := states.save(ctx, s.states); err != nil {
			return stream.Fail("state_save", fmt.Errorf("rater: %w", err))
		}
	}
	return nil
}

// priceFromList prices an event per unit from the price list file.
func (s *Stage) priceFromList(m stream.Message, ev *schemas.UsageEvent, now time.Time) ([]stream.Message, string, error) {
	o := s.prices.Rate(ev, now)
	if o.Line == nil {
		o.Unrated.Record = recordOrigin(m, ev)
		out, err := unratedMessage(m, o.Unrated)
		return out, "unrated", err
	}
	o.Line.Record = recordOrigin(m, ev)
	return []stream.Message{{Topic: schemas.TopicRated, Key: m.Key, Value: schemas.MarshalRatedLine(o.Line), Time: m.Time}}, "rated", nil
}

// recordOrigin marks the output that carries the usage record m to the
// aggregator (schemas.RecordOrigin): its usage.accepted position and the
// contract it named.
func recordOrigin(m stream.Message, ev *schemas.UsageEvent) *schemas.RecordOrigin {
	return &schemas.RecordOrigin{Partition: m.Partition, Offset: m.Offset, Contract: ev.Contract}
}

func unratedMessage(m stream.Message, u *schemas.Unrated) ([]stream.Message, error) {
	return []stream.Message{{Topic: schemas.TopicUnrated, Key: m.Key, Value: schemas.MarshalUnrated(u), Time: m.Time}}, nil
}

// correct prices a correction of a price-list tenant into its output
// messages: the correction lines, then the status change. A record that has
// no price (it was unrated) changes status without lines.
func (s *Stage) correct(m stream.Message, c *schemas.Correction, now time.Time) ([]stream.Message, string, error) {
	o := s.corrections.PriceCorrection(c, now)
	out, err := correctionMessages(m, c, o.Lines, now)
	if len(o.Lines) == 0 {
		return out, "correction_unpriced", err
	}
	return out, "correction", err
}

// correctionMessages renders a correction's lines followed by its status
// change.
func correctionMessages(m stream.Message, c *schemas.Correction, lines []schemas.RatedLine, now time.Time) ([]stream.Message, error) {
	out := make([]stream.Message, 0, len(lines)+1)
	st := schemas.StatusChange{Event: c.Event, Generation: c.Generation, Action: c.Action,
		Status: schemas.StatusForGeneration(c.Generation), Reason: c.Reason, Actor: c.Actor,
		RequestedAt: c.RequestedAt, AppliedAt: now, Priced: len(lines) > 0}
	for i := range lines {
		out = append(out, stream.Message{Topic: schemas.TopicRated, Key: m.Key, Value: schemas.MarshalRatedLine(&lines[i]), Time: m.Time})
		st.Lines = append(st.Lines, lines[i].LineID)
	}
	value, err := json.Marshal(&st)
	if err != nil {
		return nil, fmt.Errorf("rater: encode: %w", err)
	}
	return append(out, stream.Message{Topic: schemas.TopicStatus, Key: m.Key, Value: value, Time: m.Time}), nil
}
