package rater

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/rater/runstate"
	"github.com/kakin-dev/kakin/schemas"
)

// States persists the running state of every charge (rater/runstate).
type States interface {
	Load(ctx context.Context, keys []runstate.Key) ([]runstate.Entry, error)
	Save(ctx context.Context, keys []runstate.Key, entries []runstate.Entry) error
}

// ReasonNeedsRerate parks a correction the running state cannot reverse on
// its own (the record is the only one at a max or latest, or a percentage
// table has a free allowance): the period must be re-rated.
const ReasonNeedsRerate = "correction_needs_rerate"

// batchStates is the running state of every charge a batch touches, loaded
// in one round trip before the batch is priced and saved in one transaction
// after its lines are written.
type batchStates struct {
	index   map[pricing.Key]int
	keys    []pricing.Key
	entries []runstate.Entry
	states  []pricing.State
	decoded []bool
	dirty   []bool

	// The last correction generation applied to each corrected record, so
	// that two correction messages with the same generation (two admins at
	// once) or a stale one move the running state once. Stored as entries
	// whose Offset is the generation.
	genIndex   map[string]int
	genKeys    []runstate.Key
	genEntries []runstate.Entry
	genDirty   []bool
}

// addGeneration asks for the last generation applied to a record.
func (b *batchStates) addGeneration(tenant, eventID string) {
	if b.genIndex == nil {
		b.genIndex = map[string]int{}
	}
	k := tenant + "\x00" + eventID
	if _, ok := b.genIndex[k]; !ok {
		b.genIndex[k] = len(b.genKeys)
		b.genKeys = append(b.genKeys, runstate.Key{Tenant: tenant, State: "generation\x00" + eventID})
	}
}

func (b *batchStates) generation(tenant, eventID string) *runstate.Entry {
	return &b.genEntries[b.genIndex[tenant+"\x00"+eventID]]
}

func (b *batchStates) empty() bool { return len(b.keys) == 0 && len(b.genKeys) == 0 }

func (b *batchStates) add(k pricing.Key) {
	if b.index == nil {
		b.index = map[pricing.Key]int{}
	}
	if _, ok := b.index[k]; !ok {
		b.index[k] = len(b.keys)
		b.keys = append(b.keys, k)
	}
}

func storeKey(k *pricing.Key) runstate.Key {
	return runstate.Key{Tenant: k.Tenant, State: string(k.AppendBinary(nil))}
}

func (b *batchStates) load(ctx context.Context, st States) error {
	keys := make([]runstate.Key, len(b.keys), len(b.keys)+len(b.genKeys))
	for i := range b.keys {
		keys[i] = storeKey(&b.keys[i])
	}
	entries, err := st.Load(ctx, append(keys, b.genKeys...))
	if err != nil {
		return err
	}
	b.entries, b.genEntries = entries[:len(b.keys)], entries[len(b.keys):]
	b.genDirty = make([]bool, len(b.genKeys))
	b.states = make([]pricing.State, len(keys))
	b.decoded = make([]bool, len(keys))
	b.dirty = make([]bool, len(keys))
	return nil
}

// state returns the decoded state of key i.
func (b *batchStates) state(i int) (*pricing.State, error) {
	if !b.decoded[i] {
		if d := b.entries[i].Data; len(d) > 0 {
			if err := b.states[i].UnmarshalBinary(d); err != nil {
				return nil, fmt.Errorf("running state of %s: %w", b.keys[i], err)
			}
		}
		b.decoded[i] = true
	}
	return &b.states[i], nil
}

func (b *batchStates) save(ctx context.Context, st States) error {
	var keys []runstate.Key
	var entries []runstate.Entry
	for i, d := range b.dirty {
		if !d {
			continue
		}
		data, err := b.states[i].AppendBinary(nil)
		if err != nil {
			return fmt.Errorf("running state of %s: %w", b.keys[i], err)
		}
		e := b.entries[i]
		e.Data = data
		keys = append(keys, storeKey(&b.keys[i]))
		entries = append(entries, e)
	}
	for i, d := range b.genDirty {
		if d {
			keys = append(keys, b.genKeys[i])
			entries = append(entries, b.genEntries[i])
		}
	}
	return st.Save(ctx, keys, entries)
}

// engineItem is one usage.accepted message of a tenant priced by its
// compiled catalogue: an event, or a correction of one.
type engineItem struct {
	msg     stream.Message
	ev      *schemas.UsageEvent
	corr    *schemas.Correction
	charges []pricing.Charge
	err     error // from Resolve: an *pricing.Unrated

	// The record's usage.raw position, named by dedupe (hasRaw), which
	// every copy of the record shares. A record passed on before dedupe
	// named it is recognised by its usage.accepted position instead.
	rawPartition int
	rawOffset    int64
	hasRaw       bool
}

// applied reports whether the entry already holds the item's record. A
// correction is never held by position: its generation decides (see
// priceWithEngine), so it is always applied here.
func (it *engineItem) applied(e *runstate.Entry) bool {
	switch {
	case it.corr != nil:
		return false
	case it.hasRaw:
		return e.AppliedRaw(it.rawPartition, it.rawOffset)
	default:
		return e.Applied(it.msg.Partition, it.msg.Offset)
	}
}

// advance records on the entry that it holds the item's record: its
// usage.accepted position, and its usage.raw position if it has one. A
// correction moves neither (it compares neither).
func (it *engineItem) advance(e *runstate.Entry) {
	if it.corr != nil {
		return
	}
	e.Partition, e.Offset = it.msg.Partition, it.msg.Offset
	if it.hasRaw {
		e.RawPartition, e.RawOffset = it.rawPartition, it.rawOffset
	}
}

// applyCharges adds (or, for an invalidation, removes) the item's record to
// every charge it is priced under, all or none, and returns the lines. A
// charge whose state already holds this record is skipped: the record was
// applied before (this very message before a crash, or another copy of it
// that dedupe passed on again), and its lines were written before its state
// was saved.
func (s *Stage) applyCharges(b *batchStates, it *engineItem) ([]pricing.Line, []bool, error) {
	lines := make([]pricing.Line, len(it.charges))
	done := make([]bool, len(it.charges))
	type undo struct {
		idx   int
		data  []byte
		entry runstate.Entry
		dirty bool
	}
	var undos []undo
	remove := it.corr != nil && it.corr.Action == schemas.ActionInvalidate
	for i := range it.charges {
		c := &it.charges[i]
		idx := b.index[c.Key]
		if it.applied(&b.entries[idx]) {
			continue
		}
		st, err := b.state(idx)
		if err != nil {
			return nil, nil, err
		}
		if len(it.charges) > 1 {
			data, err := st.AppendBinary(nil)
			if err != nil {
				return nil, nil, err
			}
			undos = append(undos, undo{idx: idx, data: data, entry: b.entries[idx], dirty: b.dirty[idx]})
		}
		var line pricing.Line
		if remove {
			line, err = c.Remove(st, it.ev)
		} else {
			line, err = c.Apply(st, it.ev)
		}
		if err != nil {
			for _, u := range undos {
				b.states[u.idx] = pricing.State{}
				if len(u.data) > 0 {
					if uerr := b.states[u.idx].UnmarshalBinary(u.data); uerr != nil {
						return nil, nil, uerr
					}
				}
				b.entries[u.idx], b.dirty[u.idx] = u.entry, u.dirty
			}
			return nil, nil, err
		}
		it.advance(&b.entries[idx])
		b.dirty[idx] = true
		lines[i], done[i] = line, true
	}
	return lines, done, nil
}

// priceWithEngine turns one item into its output messages.
func (s *Stage) priceWithEngine(b *batchStates, it *engineItem, now time.Time) ([]stream.Message, string, error) {
	ev := it.ev
	unratedMsg := func(code, reason string) ([]stream.Message, error) {
		u := schemas.Unrated{Event: *ev, ReasonCode: code, Reason: reason, Stage: StageName, At: now}
		if it.corr == nil {
			u.Record = recordOrigin(it.msg, ev)
		}
		return []stream.Message{{Topic: schemas.TopicUnrated, Key: it.msg.Key, Value: schemas.MarshalUnrated(&u), Time: it.msg.Time}}, nil
	}
	if it.corr != nil {
		// A correction moves the running state once per generation: a
		// second message with the same generation, or an older one, was
		// already applied (or superseded) and wrote its outputs then.
		g := b.generation(ev.Tenant, ev.ID)
		if g.Offset >= int64(it.corr.Generation) {
			return nil, "correction_superseded", nil
		}
		g.Offset = int64(it.corr.Generation)
		b.genDirty[b.genIndex[ev.Tenant+"\x00"+ev.ID]] = true
	}
	var lines []pricing.Line
	var done []bool
	err := it.err
	if err == nil {
		lines, done, err = s.applyCharges(b, it)
	}
	if err == nil && !anyDone(done) {
		// Every charge already holds this record: it was priced before a
		// crash and its outputs were written then.
		return nil, "replayed", nil
	}
	var un *pricing.Unrated
	switch {
	case err == nil:
	case errors.As(err, &un) && it.corr == nil:
		out, err := unratedMsg(un.Code, un.Reason)
		return out, "unrated", err
	case errors.As(err, &un):
		// A correction of a record that never had a price: the status
		// changes, no line does.
		out, err := s.statusChange(it, nil, now)
		return out, "correction_unpriced", err
	case errors.Is(err, pricing.ErrNeedsRecompute):
		out, err := unratedMsg(ReasonNeedsRerate, fmt.Sprintf("the %s of record %s cannot be reversed incrementally: re-rate the period", it.corr.Action, ev.ID))
		return out, "correction_parked", err
	default:
		return nil, "", fmt.Errorf("rater: price %s/%s: %w", ev.Tenant, ev.ID, err)
	}
	rated := make([]schemas.RatedLine, 0, len(lines))
	for i := range lines {
		if !done[i] {
			continue
		}
		c := &it.charges[i]
		item := c.Key.Contract + "/" + c.Key.Item()
		l := schemas.RatedLine{
			LineID:   schemas.LineID(ev.Tenant, ev.ID, item),
			Event:    *ev,
			Item:     item,
			Amount:   lines[i].Decimal(),
			Currency: c.Currency,
			Period:   c.Period.ID.String(),
			RatedAt:  now,
		}
		l.Event.Contract = c.Key.Contract
		l.UnitPrice, l.UnitPriced = c.UnitPrice()
		if it.corr != nil {
			l.LineID = schemas.CorrectionLineID(ev.Tenant, ev.ID, item, it.corr.Action, it.corr.Generation)
			if it.corr.Action == schemas.ActionInvalidate {
				l.Event.Quantity = l.Event.Quantity.Neg()
			}
		}
		rated = append(rated, l)
	}
	if it.corr != nil {
		out, err := s.statusChange(it, rated, now)
		return out, "correction", err
	}
	// The first line also carries the record to usage_records.
	rated[0].Record = recordOrigin(it.msg, ev)
	out := make([]stream.Message, 0, len(rated))
	for i := range rated {
		out = append(out, stream.Message{Topic: schemas.TopicRated, Key: it.msg.Key, Value: schemas.MarshalRatedLine(&rated[i]), Time: it.msg.Time})
	}
	return out, "rated", nil
}

func anyDone(done []bool) bool {
	for _, d := range done {
		if d {
			return true
		}
	}
	return false
}

// statusChange renders a correction's lines followed by its status change.
func (s *Stage) statusChange(it *engineItem, lines []schemas.RatedLine, now time.Time) ([]stream.Message, error) {
	return correctionMessages(it.msg, it.corr, lines, now)
}
