package run

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// reconcileChunk bounds the reconciliation keys a run writes at a time.
const reconcileChunk = 50_000

// reconciler compares, customer by customer as the run computes them, the
// batch's amounts per stream item (contract/fee[split]) with the sums of
// the streamed lines, read in customer order beside the computation
// (Records.EachStreamTotal), and spills the comparison until the run writes
// it after the receivables. It holds one customer's keys at a time.
type reconciler struct {
	s       *Service
	req     Request
	ch      chan usagedb.StreamTotal
	cancel  context.CancelFunc
	errc    chan error
	pending *usagedb.StreamTotal
	done    bool
	sp      *spill[billingdb.Diff]
	// counts per outcome (the metric is counted once written), and the
	// keys that did not match.
	counts      map[string]uint64
	differences uint64
}

func (s *Service) newReconciler(ctx context.Context, req Request) (*reconciler, error) {
	sp, err := newSpill[billingdb.Diff]()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &reconciler{s: s, req: req, ch: make(chan usagedb.StreamTotal, 1024), cancel: cancel, errc: make(chan error, 1),
		sp: sp, counts: map[string]uint64{}}
	go func() {
		defer close(r.ch)
		r.errc <- s.o.Records.EachStreamTotal(ctx, req.Tenant, req.Period, func(t usagedb.StreamTotal) error {
			select {
			case r.ch <- t:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return r, nil
}

func (r *reconciler) emit(d billingdb.Diff) error {
	r.counts[d.Outcome]++
	if d.Outcome != billingdb.Match {
		r.differences++
	}
	return r.sp.add(&d)
}

// next returns the next streamed total, or nil at the end.
func (r *reconciler) next() *usagedb.StreamTotal {
	if r.pending == nil {
		t, ok := <-r.ch
		if !ok {
			return nil // the end, or an error finish reports
		}
		r.pending = &t
	}
	return r.pending
}

// other handles a streamed total of a customer the run did not compute: a
// run of every customer reports the catalogue's charges (a price-list
// line, without "/", is not billed by the catalogue); a run of a customer
// or a group leaves other customers alone.
func (r *reconciler) other(t *usagedb.StreamTotal) error {
	if r.req.Customer != "" || r.req.Group != "" || !strings.Contains(t.Item, "/") {
		return nil
	}
	d := billingdb.Diff{Customer: t.Customer, ChargePeriod: r.req.Period, Item: t.Item, Stream: t.Amount, Batch: decimal.Zero,
		Outcome: billingdb.OnlyInStream}
	if t.Amount.IsZero() {
		d.Outcome = billingdb.Match // zeroed lines (a re-rate's) bill nothing either way
	}
	return r.emit(d)
}

// customer compares one customer's batch amounts per item with its
// streamed totals. Customers come in ascending order.
func (r *reconciler) customer(customer string, items map[string]decimal.Decimal) error {
	for t := r.next(); t != nil && t.Customer <= customer; t = r.next() {
		r.pending = nil
		if t.Customer < customer {
			if err := r.other(t); err != nil {
				return err
			}
			continue
		}
		d := billingdb.Diff{Customer: customer, ChargePeriod: r.req.Period, Item: t.Item, Stream: t.Amount, Batch: decimal.Zero}
		if b, ok := items[t.Item]; ok {
			delete(items, t.Item)
			d.Batch, d.Outcome = b, billingdb.Match
			if !b.Equal(t.Amount) {
				d.Outcome = billingdb.Differ
			}
		} else if t.Amount.IsZero() {
			d.Outcome = billingdb.Match // zeroed lines (a re-rate's) bill nothing either way
		} else {
			d.Outcome = billingdb.OnlyInStream
		}
		if err := r.emit(d); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := billingdb.Diff{Customer: customer, ChargePeriod: r.req.Period, Item: k, Batch: items[k], Stream: decimal.Zero,
			Outcome: billingdb.OnlyInBatch}
		if d.Batch.IsZero() {
			d.Outcome = billingdb.Match
		}
		if err := r.emit(d); err != nil {
			return err
		}
	}
	return nil
}

// finish handles the streamed totals after the last customer and reports
// the stream's error: the comparison is complete only if it is nil.
func (r *reconciler) finish() error {
	for t := r.next(); t != nil; t = r.next() {
		r.pending = nil
		if err := r.other(t); err != nil {
			return err
		}
	}
	r.done = true
	err := <-r.errc
	r.cancel()
	if err != nil {
		return fmt.Errorf("billing run reconciliation: %w", err)
	}
	return nil
}

// write stores the comparison in chunks and counts it in the metric.
func (r *reconciler) write(ctx context.Context) error {
	rd, err := r.sp.reader()
	if err != nil {
		return err
	}
	for {
		ds, err := rd.next(reconcileChunk, one[billingdb.Diff])
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			break
		}
		if err := r.s.o.Store.WriteReconciliation(ctx, r.req.Tenant, r.req.RunID, ds); err != nil {
			return err
		}
	}
	for outcome, n := range r.counts {
		r.s.diffs.WithLabelValues(outcome).Add(float64(n))
	}
	return nil
}

// close stops the stream early if it was not finished and removes the
// spill.
func (r *reconciler) close() {
	if !r.done {
		r.cancel()
		for range r.ch {
		}
		<-r.errc
		r.done = true
	}
	r.sp.close()
}
