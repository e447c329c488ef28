package run

import (
	"context"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/schemas"
)

// customerStream is a run's records, read customer by customer in customer
// order (Records.EachCustomer) in a goroutine beside the computation, a
// bounded number of customers ahead.
type customerStream struct {
	ch      chan customerRecords
	cancel  context.CancelFunc
	errc    chan error
	pending *customerRecords
	done    bool
}

type customerRecords struct {
	customer string
	evs      []schemas.UsageEvent
}

// streamAhead bounds the customers read ahead of the computation.
const streamAhead = 256

func (s *Service) streamRecords(ctx context.Context, tenant string, from, to, receivedBefore time.Time) *customerStream {
	ctx, cancel := context.WithCancel(ctx)
	cs := &customerStream{ch: make(chan customerRecords, streamAhead), cancel: cancel, errc: make(chan error, 1)}
	go func() {
		defer close(cs.ch)
		cs.errc <- s.o.Records.EachCustomer(ctx, tenant, from, to, receivedBefore, func(customer string, evs []schemas.UsageEvent) error {
			select {
			case cs.ch <- customerRecords{customer, evs}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return cs
}

// recordsOf returns the records of customer, skipping those of customers
// before it (none of the run's basic contracts is theirs). Customers must
// be asked for in ascending order.
func (cs *customerStream) recordsOf(customer string) []schemas.UsageEvent {
	for {
		if cs.pending == nil {
			g, ok := <-cs.ch
			if !ok {
				return nil // the end, or an error finish reports
			}
			cs.pending = &g
		}
		switch {
		case cs.pending.customer < customer:
			cs.pending = nil
		case cs.pending.customer == customer:
			evs := cs.pending.evs
			cs.pending = nil
			return evs
		default:
			return nil
		}
	}
}

// finish reads the rest of the stream and returns its error: every
// customer's records were handed out only if it is nil.
func (cs *customerStream) finish() error {
	cs.pending = nil
	for range cs.ch {
	}
	cs.done = true
	err := <-cs.errc
	cs.cancel()
	if err != nil {
		return fmt.Errorf("billing run: %w", err)
	}
	return nil
}

// stop ends the stream early (the run failed) and waits for its goroutine.
func (cs *customerStream) stop() {
	if cs.done {
		return
	}
	cs.cancel()
	for range cs.ch {
	}
	<-cs.errc // the run already failed for its own reason
	cs.done = true
}
