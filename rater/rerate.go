package rater

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/rater/runstate"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// History is what a re-rate replays: the records stored by the aggregator.
type History interface {
	// History returns the customer's valid records of [from, to) accepted
	// before (partition, before), in the order they were priced.
	History(ctx context.Context, tenant, customer string, from, to time.Time, partition int, before int64) ([]schemas.UsageEvent, error)
	// PeriodLines returns the customer's current lines of a period.
	PeriodLines(ctx context.Context, tenant, customer, period string) ([]schemas.RatedLine, error)
}

// StoredUpTo waits until the aggregator has stored every output the rater
// wrote so far: the aggregator stores a customer's records from the rated
// lines and parked records that carry them (schemas.RecordOrigin), so once
// it has caught up with usage.rated, usage.unrated and usage.status, every
// record before a re-rate request is in usage_records, with its lines and
// statuses.
type StoredUpTo interface {
	WaitCaughtUp(ctx context.Context, poll time.Duration) error
}

// WithRerate lets the stage answer re-rate requests, reading stored records
// from history once stored says the aggregator has caught up.
func (s *Stage) WithRerate(history History, stored StoredUpTo, wait time.Duration) *Stage {
	s.history, s.stored, s.rerateWait = history, stored, wait
	return s
}

// rerate prices one customer's period again from its stored records with the
// catalogue as it is now (each record against the versions valid at its own
// time), replacing the period's lines and running states:
//
//   - every recomputed line is written under the id the stream gave it, so
//     it replaces the old amount (a newer version in rated_usage);
//   - every old line of the period that the recomputation does not produce
//     (correction lines, lines of records now unrated or invalid) is written
//     again with amount and quantity zero;
//   - the period's running states are saved at the request's position, so
//     records after it are priced on top of the recomputation and a
//     redelivered request is skipped like any applied record.
//
// A request that does not decode was parked by the runner (under
// rerate:<partition>:<offset>).
func (s *Stage) rerate(ctx context.Context, b *stream.Batch[decoded], i int) error {
	if b.Items[i].Parked != nil {
		b.Count("rerate_malformed", 1)
		return nil
	}
	m, r := b.Items[i].Msg, b.Items[i].Value.rerate
	var eng *pricing.Engine
	if s.engines != nil {
		eng = s.engines.Engine(r.Tenant)
	}
	pid, perr := pricing.ParsePeriod(r.Period)
	if eng == nil || s.history == nil || perr != nil {
		// Price-list tenants have no running state and no versions to
		// re-rate against.
		b.Count("rerate_unsupported", 1)
		return nil
	}
	// Every record before the request was priced and its outputs written
	// (handleSegment flushed them, and earlier batches were acknowledged
	// before they were committed): once the aggregator has caught up with
	// the outputs written so far, they are stored.
	wait, cancel := context.WithTimeout(ctx, s.rerateWait)
	err := s.stored.WaitCaughtUp(wait, 100*time.Millisecond)
	cancel()
	if err != nil {
		return stream.Fail("rerate_wait", fmt.Errorf("rater: re-rate %s/%s %s: %w", r.Tenant, r.Customer, r.Period, err))
	}
	// Any basic contract's period labelled P lies within the months P−1 and
	// P (closing days 1-28 start it in P−1), in any time zone.
	y, mo := pid.Year(), pid.Month()
	from := time.Date(y, mo-1, 1, 0, 0, 0, 0, time.UTC).Add(-26 * time.Hour)
	to := time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC).Add(26 * time.Hour)
	events, err := s.history.History(ctx, r.Tenant, r.Customer, from, to, m.Partition, m.Offset)
	if err != nil {
		return stream.Fail("rerate_read", fmt.Errorf("rater: re-rate: %w", err))
	}
	old, err := s.history.PeriodLines(ctx, r.Tenant, r.Customer, r.Period)
	if err != nil {
		return stream.Fail("rerate_read", fmt.Errorf("rater: re-rate: %w", err))
	}
	now := b.Now
	batch := eng.RatePeriod(events)
	var keys []runstate.Key
	var data [][]byte
	for k, st := range batch.States {
		if k.Period != pid {
			continue
		}
		d, err := st.AppendBinary(nil)
		if err != nil {
			return fmt.Errorf("rater: re-rate state of %s: %w", k, err)
		}
		keys = append(keys, storeKey(&k))
		data = append(data, d)
	}
	// A redelivered request whose states were saved (and maybe moved on by
	// later records) was done: states only reach this position through it.
	// A re-rate request is on usage.accepted only, so it is recognised by
	// its usage.accepted position.
	entries, err := s.states.Load(ctx, keys)
	if err != nil {
		return stream.Fail("state_load", fmt.Errorf("rater: re-rate: %w", err))
	}
	for _, e := range entries {
		if e.Applied(m.Partition, m.Offset) {
			b.Count("replayed", 1)
			return nil
		}
	}
	// The recomputation holds every record of the customer applied before
	// the request, so each state now holds the raw positions up to the
	// highest any of them held: a copy of such a record that dedupe passes
	// on after the request is skipped, not counted on top.
	rawPartition, rawOffset := 0, int64(-1)
	for _, e := range entries {
		if e.RawOffset > rawOffset {
			rawPartition, rawOffset = e.RawPartition, e.RawOffset
		}
	}
	for i := range entries {
		// Saved over the versions just loaded: fenced against a late
		// writer like any batch.
		entries[i].Partition, entries[i].Offset = m.Partition, m.Offset
		entries[i].RawPartition, entries[i].RawOffset = rawPartition, rawOffset
		entries[i].Data = data[i]
	}
	var out []stream.Message
	written := map[string]bool{}
	for _, bl := range batch.Lines {
		if bl.Key.Period != pid {
			continue
		}
		ev := events[bl.Event]
		item := bl.Key.Contract + "/" + bl.Key.Item()
		l := schemas.RatedLine{LineID: schemas.LineID(ev.Tenant, ev.ID, item), Event: ev, Item: item,
			UnitPrice: bl.UnitPrice, UnitPriced: bl.UnitPriced, Amount: bl.Line.Decimal(), Currency: bl.Currency, Period: r.Period, RatedAt: now}
		l.Event.Contract = bl.Key.Contract
		written[l.LineID] = true
		msg, err := ratedMessage(m, &l)
		if err != nil {
			return err
		}
		out = append(out, msg)
	}
	for i := range old {
		l := old[i]
		if written[l.LineID] || strings.HasPrefix(l.Event.ID, fixedPrefix) {
			continue // recomputed, or a fixed fee (FixedFees owns those)
		}
		l.Amount, l.Event.Quantity, l.RatedAt = decimal.Zero, decimal.Zero, now
		msg, err := ratedMessage(m, &l)
		if err != nil {
			return err
		}
		out = append(out, msg)
	}
	// The re-rated lines are stored before the states that hold them.
	b.Emit(i, out...)
	if err := b.Flush(ctx); err != nil {
		return fmt.Errorf("rater: write re-rated lines: %w", err)
	}
	if err := s.states.Save(ctx, keys, entries); err != nil {
		return stream.Fail("state_save", fmt.Errorf("rater: re-rate: %w", err))
	}
	b.Count("rerated_lines", len(out))
	return nil
}

func ratedMessage(m stream.Message, l *schemas.RatedLine) (stream.Message, error) {
	return stream.Message{Topic: schemas.TopicRated, Key: m.Key, Value: schemas.MarshalRatedLine(l), Time: m.Time}, nil
}

// decodeRerate reads a re-rate request; one without tenant or customer is
// not one.
func decodeRerate(value []byte) (schemas.Rerate, error) {
	var r schemas.Rerate
	if err := json.Unmarshal(value, &r); err != nil {
		return schemas.Rerate{}, err
	}
	if r.Tenant == "" || r.Customer == "" {
		return schemas.Rerate{}, errors.New("no tenant or customer")
	}
	return r, nil
}
