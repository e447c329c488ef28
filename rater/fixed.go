package rater

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
	"github.com/zeebo/xxh3"
)

// FixedFees emits the fixed (定額) fees of every catalogue tenant's service
// contracts to usage.rated once they fall due (their BillOn day has begun
// in the contract's time zone): monthly, yearly and one-time fees, pro-rated
// as the fee says (pricing.Engine.FixedCharges). Each line's id is derived
// from the tenant, contract, period, fee and covered days, so emitting it
// again (after a restart, from a second rater, after a catalogue change)
// replaces it instead of adding to it; a changed amount replaces the old
// one. The current and the previous billing period (of the contract's own
// length: month, week or day, pricing.PeriodID.Prev) are looked at, so a
// line due at the end of a period is emitted even if the process was down
// then.
//
// With WithRecords, it also emits the lines of a period as a whole once the
// period has ended (the previous period): the minimums of metered fees
// without usage (plans with minimum_without_usage) and the commitment
// true-up, as pricing.Engine.PeriodLines computes them from the period's
// stored records — the receivable batch's computation, so batch = stream.
// They are recomputed every round while the period is the previous one:
// late usage changes the amount under the same line id, and a line no
// longer due is written again at zero. The same round writes the period-end
// amounts of time-weighted charges (pricing.Batch.PeriodEndOf: the
// level-time of the period priced; their records' own lines are zero)
// under the charge's item and an id of the contract, period, plan, item and
// rate table; with a PeriodRecords that is also StoredLines, a stored such
// line its records no longer produce is written again at zero.
type FixedFees struct {
	src      Catalogues
	engines  *Engines
	records  PeriodRecords
	producer stream.Producer
	metrics  *stream.Metrics
	log      *slog.Logger
	now      func() time.Time
	// emitted remembers what this process already wrote (line id hash →
	// amount hash), so an unchanged line is not written every round.
	emitted map[uint64]uint64
}

// NewFixedFees returns the fixed-fee emitter.
func NewFixedFees(src Catalogues, engines *Engines, p stream.Producer, m *stream.Metrics, log *slog.Logger) *FixedFees {
	return &FixedFees{src: src, engines: engines, producer: p, metrics: m, log: log, now: clock.Now, emitted: map[uint64]uint64{}}
}

// PeriodRecords reads a customer's valid stored records of a window in the
// order the rater priced them (usagedb.Records does).
type PeriodRecords interface {
	CustomerPeriodRecords(ctx context.Context, tenant, customer string, from, to, receivedBefore time.Time) ([]schemas.UsageEvent, error)
}

// WithRecords makes the emitter emit the period lines (idle minimums and
// commitment true-ups) of ended periods, from the records r reads.
func (f *FixedFees) WithRecords(r PeriodRecords) *FixedFees {
	f.records = r
	return f
}

// WithClock makes the emitter read the business clock from now (default
// clock.Now): tests pin it.
func (f *FixedFees) WithClock(now func() time.Time) *FixedFees {
	f.now = now
	return f
}

// Run emits every interval until ctx ends.
func (f *FixedFees) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := f.Emit(ctx); err != nil && ctx.Err() == nil {
			f.metrics.Errors.WithLabelValues(StageName, "fixed_fees").Inc()
			f.log.Warn("rater: fixed fees not emitted; retrying next round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Emit writes every fixed line due by now that this process has not written
// with the same amount yet.
func (f *FixedFees) Emit(ctx context.Context) error {
	now := f.now().UTC()
	var out []kafka.Message
	var keys []uint64
	var sums []uint64
	parked := 0
	batches := map[window]*pricing.Batch{}
	stored := map[storedKey][]schemas.RatedLine{}
	for _, tenant := range f.src.Tenants() {
		eng := f.engines.Engine(tenant)
		if eng == nil {
			continue
		}
		cat := f.src.Catalogue(tenant)
		for i := range cat.ServiceContracts {
			sc := &cat.ServiceContracts[i]
			p, err := eng.PeriodAt(sc.ID, now)
			if err != nil {
				continue // not in the compiled engine (e.g. its basic contract is missing)
			}
			today := catalog.DateOf(now.In(p.Location))
			for _, pid := range []pricing.PeriodID{p.ID.Prev(), p.ID} {
				lines, err := eng.FixedCharges(sc.ID, pid)
				if err != nil {
					return fmt.Errorf("fixed fees of %s/%s %s: %w", tenant, sc.ID, pid, err)
				}
				if pid < p.ID && f.records != nil && eng.HasPeriodLines(sc.ID, pid) {
					period, ends, err := f.periodLines(ctx, tenant, sc, eng, pid, now, batches)
					if err != nil {
						return err
					}
					lines = append(lines, period...)
					prev, err := eng.Period(sc.ID, pid)
					if err != nil {
						return err
					}
					tw, err := f.timeWeightedLines(ctx, tenant, sc, pid, ends, prev.End.In(prev.Location).UTC(), now,
						stored, eng.HasTimeWeighted(sc.ID, pid))
					if err != nil {
						return err
					}
					for i := range tw {
						l := &tw[i].line
						key, sum := xxh3.HashString(l.LineID), xxh3.HashString(l.Amount.String())
						if f.emitted[key] == sum {
							continue
						}
						for _, m := range f.periodEndMessages(&tw[i], now) {
							if m.Topic == schemas.TopicUnrated {
								parked++
							}
							out = append(out, m)
							keys, sums = append(keys, key), append(sums, sum)
						}
					}
				}
				for _, fl := range lines {
					if fl.BillOn.After(today) {
						continue // not due yet
					}
					l := fixedLine(tenant, sc.Customer, fl, p.Location, now)
					key, sum := xxh3.HashString(l.LineID), xxh3.HashString(l.Amount.String())
					if f.emitted[key] == sum {
						continue
					}
					msg, err := f.message(&l, fl, now)
					if err != nil {
						return err
					}
					if msg.Topic == schemas.TopicUnrated {
						parked++
					}
					out = append(out, msg)
					keys, sums = append(keys, key), append(sums, sum)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	if err := f.producer.WriteMessages(ctx, out...); err != nil {
		return fmt.Errorf("write fixed fees: %w", err)
	}
	for i, k := range keys {
		f.emitted[k] = sums[i]
	}
	f.metrics.Records.WithLabelValues(StageName, "fixed_fee").Add(float64(len(out) - parked))
	if parked > 0 {
		f.metrics.Records.WithLabelValues(StageName, "fixed_fee_overflow").Add(float64(parked))
	}
	return nil
}

// window is a customer's records of one period window, rated; a round reads
// and rates each at most once, whatever number of its contracts need it.
type window struct {
	tenant, customer string
	from, to         time.Time
}

// periodLines computes the period lines of an ended period of a service
// contract from its customer's records of the period (received by now),
// zero lines included (pricing.Engine.PeriodLines with all), and returns
// the period-end amounts of its time-weighted charges
// (pricing.Batch.PeriodEndOf) beside them.
func (f *FixedFees) periodLines(ctx context.Context, tenant string, sc *catalog.ServiceContract, eng *pricing.Engine,
	id pricing.PeriodID, now time.Time, batches map[window]*pricing.Batch) ([]pricing.FixedLine, []pricing.PeriodEndLine, error) {
	p, err := eng.Period(sc.ID, id)
	if err != nil {
		return nil, nil, err
	}
	w := window{tenant, sc.Customer, p.Start.In(p.Location), p.End.AddDays(1).In(p.Location)}
	b := batches[w]
	if b == nil {
		evs, err := f.records.CustomerPeriodRecords(ctx, tenant, sc.Customer, w.from, w.to, now)
		if err != nil {
			return nil, nil, fmt.Errorf("records of %s/%s %s: %w", tenant, sc.Customer, id, err)
		}
		b = eng.RatePeriod(evs)
		batches[w] = b
	}
	lines, err := eng.PeriodLines(sc.ID, id, b, true)
	if err != nil {
		return nil, nil, fmt.Errorf("period lines of %s/%s %s: %w", tenant, sc.ID, id, err)
	}
	return lines, b.PeriodEndOf(sc.ID, id), nil
}

// StoredLines reads a customer's current lines of a billing period
// (usagedb.Records does). A PeriodRecords that has it lets the emitter
// write at zero the period-end line of a time-weighted charge that its
// records no longer produce (all of them invalidated).
type StoredLines interface {
	PeriodLines(ctx context.Context, tenant, customer, period string) ([]schemas.RatedLine, error)
}

type storedKey struct{ tenant, customer, period string }

// levelMark is in the event id of every time-weighted period-end line,
// after the charge's item: fixed:<contract>:<period>:<plan>:<item>#level:<rate table>.
const levelMark = "#level:"

// timeWeightedLines renders the period-end amounts of a service contract's
// time-weighted charges of an ended period as rated lines: the item is the
// charge's own (contract/fee[split]@group, the item of its records' zero
// lines, so the charge's stream total is its amount), the event id
// fixed:<contract>:<period>:<plan>:<item>#level:<rate table> (a re-rate
// leaves fixed: lines alone), the time the first instant of the period's
// last day (one ClickHouse partition whatever the computation), the
// quantity the level-time. A stored period-end line of the contract and
// period that the records no longer produce is returned at zero (looked
// for when the contract's plan has a time-weighted fee, hasTW).
func (f *FixedFees) timeWeightedLines(ctx context.Context, tenant string, sc *catalog.ServiceContract, id pricing.PeriodID,
	ends []pricing.PeriodEndLine, at, now time.Time, stored map[storedKey][]schemas.RatedLine, hasTW bool) ([]periodEnd, error) {
	var out []periodEnd
	ids := map[string]bool{}
	for _, pe := range ends {
		eid := fmt.Sprintf("%s%s:%s:%s:%s%s%s", fixedPrefix, sc.ID, id, pe.Plan, pe.Key.Item(), levelMark, pe.Key.Rate)
		item := sc.ID + "/" + pe.Key.Item()
		amount := pe.Line.Decimal()
		if pe.Reason != nil {
			amount = decimal.Zero
		}
		l := schemas.RatedLine{LineID: schemas.LineID(tenant, eid, item),
			Event: schemas.UsageEvent{Tenant: tenant, ID: eid, Customer: sc.Customer, Element: pe.Key.Item() + "#level", Contract: sc.ID,
				Quantity: pe.Quantity, Time: at, ReceivedAt: now},
			Item: item, Amount: amount, Currency: pe.Currency, Period: id.String(), RatedAt: now}
		out = append(out, periodEnd{line: l, reason: pe.Reason})
		ids[l.LineID] = true
	}
	sl, ok := f.records.(StoredLines)
	if !ok || !hasTW && len(ends) == 0 {
		return out, nil // no time-weighted fee: nothing to write at zero
	}
	k := storedKey{tenant, sc.Customer, id.String()}
	lines, seen := stored[k]
	if !seen {
		var err error
		if lines, err = sl.PeriodLines(ctx, tenant, sc.Customer, id.String()); err != nil {
			return nil, fmt.Errorf("lines of %s/%s %s: %w", tenant, sc.Customer, id, err)
		}
		stored[k] = lines
	}
	prefix := fixedPrefix + sc.ID + ":" + id.String() + ":"
	for _, l := range lines {
		if ids[l.LineID] || !strings.HasPrefix(l.Event.ID, prefix) || !strings.Contains(l.Event.ID, levelMark) {
			continue
		}
		l.Amount, l.Event.Quantity, l.Event.ReceivedAt, l.RatedAt = decimal.Zero, decimal.Zero, now, now
		out = append(out, periodEnd{line: l})
	}
	return out, nil
}

// message renders a fixed line for usage.rated, or, when the store could not
// hold it (an amount of 10^28 or more: a fee amount or contract quantity
// from before the catalogue bounded them), parks it on usage.unrated as
// amount_overflow: the aggregator would refuse such a line and retry its
// batch for ever, holding up every other line behind it.
func (f *FixedFees) message(l *schemas.RatedLine, fl pricing.FixedLine, now time.Time) (kafka.Message, error) {
	if schemas.StoredDecimalOK(l.Amount) && schemas.StoredDecimalOK(l.Event.Quantity) {
		return kafka.Message{Topic: schemas.TopicRated, Key: l.Event.PartitionKey(), Value: schemas.MarshalRatedLine(l), Time: now}, nil
	}
	reason := fmt.Sprintf("fixed fee %q of service contract %q for %s: amount %s (quantity %d) does not fit the stored amounts (below 10^28); correct the fee's amount or the contract's quantity",
		fl.Fee, fl.Contract, fl.Period, l.Amount, fl.Quantity)
	f.log.Warn("rater: fixed fee parked as unrated", "tenant", l.Event.Tenant, "contract", fl.Contract, "fee", fl.Fee, "period", fl.Period.String(), "amount", l.Amount.String())
	v := schemas.MarshalUnrated(&schemas.Unrated{Event: l.Event, ReasonCode: schemas.ReasonOverflow, Reason: reason, Stage: StageName, At: now})
	return kafka.Message{Topic: schemas.TopicUnrated, Key: l.Event.PartitionKey(), Value: v, Time: now}, nil
}

// periodEnd is a time-weighted charge's period-end line, and why it could
// not be priced (then its amount is zero).
type periodEnd struct {
	line   schemas.RatedLine
	reason *pricing.Unrated
}

// periodEndMessages renders a time-weighted period-end line for
// usage.rated. A charge that could not be priced (its level-time beyond a
// closed last tier: the reason's code) is written at zero, as the billing
// run prices it, and parked on usage.unrated under the line's id with the
// reason; a line the store could not hold is parked as amount_overflow
// instead of written (the reconciliation then shows the difference).
func (f *FixedFees) periodEndMessages(pe *periodEnd, now time.Time) []kafka.Message {
	l := &pe.line
	var out []kafka.Message
	code, reason := "", ""
	switch {
	case !schemas.StoredDecimalOK(l.Amount) || !schemas.StoredDecimalOK(l.Event.Quantity):
		code, reason = schemas.ReasonOverflow, fmt.Sprintf("time-weighted charge %s for %s: amount %s (quantity %s) does not fit the stored amounts (below 10^28)",
			l.Item, l.Period, l.Amount, l.Event.Quantity)
	default:
		out = append(out, kafka.Message{Topic: schemas.TopicRated, Key: l.Event.PartitionKey(), Value: schemas.MarshalRatedLine(l), Time: now})
		if pe.reason == nil {
			return out
		}
		code, reason = pe.reason.Code, fmt.Sprintf("time-weighted charge %s for %s: %s", l.Item, l.Period, pe.reason.Reason)
	}
	f.log.Warn("rater: time-weighted charge parked as unrated", "tenant", l.Event.Tenant, "item", l.Item, "period", l.Period, "reason", reason)
	v := schemas.MarshalUnrated(&schemas.Unrated{Event: l.Event, ReasonCode: code, Reason: reason, Stage: StageName, At: now})
	return append(out, kafka.Message{Topic: schemas.TopicUnrated, Key: l.Event.PartitionKey(), Value: v, Time: now})
}

// fixedPrefix starts the event id of every fixed-fee line; usage record ids
// never reach rated_usage with it unless a client sends one, and a re-rate
// leaves such lines to FixedFees.
const fixedPrefix = "fixed:"

// fixedLine renders a fixed fee as a rated line: its event id names the
// contract, period, plan, item (the fee; for an idle minimum fee#minimum,
// for a true-up #commitment) and first covered day; its quantity is the
// contract's quantity (0 for period lines); its time is the first instant of
// the day it is due.
func fixedLine(tenant, customer string, fl pricing.FixedLine, loc *time.Location, now time.Time) schemas.RatedLine {
	id := fmt.Sprintf("%s%s:%s:%s:%s:%s", fixedPrefix, fl.Contract, fl.Period, fl.Plan, fl.Item(), fl.From)
	item := fl.Contract + "/" + fl.Item()
	return schemas.RatedLine{
		LineID: schemas.LineID(tenant, id, item),
		Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Element: fl.Item(), Contract: fl.Contract,
			Quantity: decimal.NewFromInt(fl.Quantity), Time: fl.BillOn.In(loc).UTC(), ReceivedAt: now},
		Item:     item,
		Amount:   fl.Amount,
		Currency: fl.Currency,
		Period:   fl.Period.String(),
		RatedAt:  now,
	}
}
