package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// pos is a record's position: partition and offset.
type pos struct {
	p int
	o int64
}

func positions(msgs []kafka.Message) []pos {
	out := make([]pos, len(msgs))
	for i, m := range msgs {
		out[i] = pos{m.Partition, m.Offset}
	}
	return out
}

// consumerConfig is a consumer tuned for fast tests: small batches, a short
// fill wait and kfake's minimum session timeout.
func consumerConfig(group string, maxBatch int, topics ...string) stream.ConsumerConfig {
	return stream.ConsumerConfig{
		Stage:          "test",
		Brokers:        brokers,
		Group:          group,
		Topics:         topics,
		MaxBatch:       maxBatch,
		MaxWait:        20 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		Log:            slog.New(slog.DiscardHandler),
		Metrics:        stream.NewMetrics(prometheus.NewRegistry()),
	}
}

// consumer is one running Consume call.
type consumer struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// startConsumer runs Consume in a goroutine; the test's cleanup stops it.
// ctx is handed to the caller's handler factory so a handler can cancel it.
func startConsumer(t *testing.T, cfg stream.ConsumerConfig, handler func(cancel context.CancelFunc) stream.BatchHandler) *consumer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cancel: cancel, done: make(chan struct{})}
	h := handler(cancel)
	go func() {
		defer close(c.done)
		c.err = stream.Consume(ctx, cfg, h)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// wait waits for Consume to return (after its ctx ended) and returns its error.
func (c *consumer) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(15 * time.Second):
		t.Fatal("Consume did not return within 15s of its context ending")
		return nil
	}
}

// stop cancels Consume and waits for it to return.
func (c *consumer) stop(t *testing.T) error {
	t.Helper()
	c.cancel()
	return c.wait(t)
}

// returned reports whether Consume has returned.
func (c *consumer) returned() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// checkEachOnce checks that seen holds every offset below end exactly once.
func checkEachOnce(t *testing.T, seen map[pos]int, end map[int]int64) {
	t.Helper()
	var want int64
	for p, e := range end {
		want += e
		for o := int64(0); o < e; o++ {
			if n := seen[pos{p, o}]; n != 1 {
				t.Errorf("record %d/%d handed %d times, want exactly once", p, o, n)
			}
		}
	}
	if int64(len(seen)) != want {
		t.Errorf("%d distinct records handed, want %d", len(seen), want)
	}
}

// A handler that always succeeds is handed every record exactly once, in
// offset order per partition, in batches no larger than MaxBatch; records
// produced while the consumer runs are handed too; when all is handled the
// group's lag is 0, and Consume returns nil after its context is cancelled.
func TestConsumeHandsEveryRecordExactlyOnce(t *testing.T) {
	needKafka(t)
	t.Parallel()
	topic := newTopic(t, 3)
	produce(t, topic, 300)
	group := uniqueName(t, "group")
	const maxBatch = 50

	var mu sync.Mutex
	seen := map[pos]int{}
	last := map[int]int64{}
	var problems []string
	c := startConsumer(t, consumerConfig(group, maxBatch, topic), func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if len(msgs) == 0 || len(msgs) > maxBatch {
				problems = append(problems, fmt.Sprintf("batch of %d records (MaxBatch %d)", len(msgs), maxBatch))
			}
			for _, m := range msgs {
				if m.Topic != topic {
					problems = append(problems, "record of topic "+m.Topic)
				}
				if l, ok := last[m.Partition]; ok && m.Offset <= l {
					problems = append(problems, fmt.Sprintf("partition %d: offset %d handed after %d", m.Partition, m.Offset, l))
				}
				last[m.Partition] = m.Offset
				seen[pos{m.Partition, m.Offset}]++
			}
			return nil
		}
	})
	end := produce(t, topic, 200) // while consuming
	total := sumOffsets(end)
	if total != 500 {
		t.Fatalf("topic holds %d records, want 500", total)
	}
	waitFor(t, 15*time.Second, "every record to be handed", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(seen)) >= total, fmt.Sprintf("%d of %d handed", len(seen), total)
	})
	waitFor(t, 5*time.Second, "lag 0", func() (bool, string) {
		lag, err := stream.GroupLag(context.Background(), client(), group, []string{topic})
		return err == nil && lag == 0, fmt.Sprintf("lag %d, err %v", lag, err)
	})
	if err := c.stop(t); err != nil {
		t.Fatalf("Consume returned %v after cancel, want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	checkEachOnce(t, seen, end)
	if got := committed(t, group, topic, 3); !maps(got, end) {
		t.Errorf("committed offsets %v, want the end offsets %v", got, end)
	}
}

func maps(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// When the handler fails a batch, the very same batch (same records, same
// offsets) is handed again, after a growing backoff, until it succeeds;
// meanwhile nothing at or after it is committed and no later batch is handed.
func TestConsumeRetriesAFailedBatchUntilItSucceeds(t *testing.T) {
	needKafka(t)
	t.Parallel()
	topic := newTopic(t, 1)
	end := produce(t, topic, 50)
	group := uniqueName(t, "group")
	const failures = 3

	type call struct {
		offsets   []pos
		failed    bool
		at        time.Time
		committed int64 // the group's committed offset while the call ran
		err       error // from reading the committed offset
	}
	var mu sync.Mutex
	var calls []call
	var target []pos // the batch made to fail
	failed := 0
	seen := map[pos]int{}
	c := startConsumer(t, consumerConfig(group, 10, topic), func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			cl := call{offsets: positions(msgs), at: time.Now()}
			if target == nil && msgs[0].Offset >= 20 {
				target = cl.offsets
			}
			if slices.Equal(cl.offsets, target) && failed < failures {
				failed++
				cl.failed = true
				got, err := fetchCommitted(ctx, group, topic, 1)
				cl.committed, cl.err = got[0], err
				calls = append(calls, cl)
				return errors.New("injected failure")
			}
			calls = append(calls, cl)
			for _, m := range msgs {
				seen[pos{m.Partition, m.Offset}]++
			}
			return nil
		}
	})
	waitFor(t, 15*time.Second, "every record to be handled", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(seen)) >= end[0], fmt.Sprintf("%d of %d handled", len(seen), end[0])
	})
	waitFor(t, 5*time.Second, "the last batch to be committed", func() (bool, string) {
		got, err := fetchCommitted(context.Background(), group, topic, 1)
		return err == nil && got[0] == end[0], fmt.Sprintf("committed %v (%v)", got, err)
	})
	if err := c.stop(t); err != nil {
		t.Fatalf("Consume returned %v after cancel, want nil", err)
	}

	mu.Lock()
	defer mu.Unlock()
	checkEachOnce(t, seen, end)
	i := slices.IndexFunc(calls, func(c call) bool { return slices.Equal(c.offsets, target) })
	if i < 0 || i+failures >= len(calls) {
		t.Fatalf("target batch %v: calls %d, found at %d", target, len(calls), i)
	}
	first := target[0].o
	for k := 0; k <= failures; k++ {
		c := calls[i+k]
		if !slices.Equal(c.offsets, target) {
			t.Fatalf("call %d after the first failure handed %v, want the failed batch %v again", k, c.offsets, target)
		}
		if wantFailed := k < failures; c.failed != wantFailed {
			t.Errorf("call %d of the batch: failed=%v, want %v", k, c.failed, wantFailed)
		}
		if k == failures {
			break
		}
		if c.err != nil {
			t.Errorf("attempt %d: read committed offset: %v", k, c.err)
		} else if c.committed > first {
			t.Errorf("attempt %d: committed offset %d is past the failing batch (first offset %d)", k, c.committed, first)
		} else if c.committed != first {
			// Commits are synchronous and per batch: the batch before
			// the failing one is committed before it is handed.
			t.Errorf("attempt %d: committed offset %d, want %d (every earlier batch committed)", k, c.committed, first)
		}
		// Backoff 100ms, 200ms, 400ms…; allow for timer slack only.
		want := time.Duration(90<<k) * time.Millisecond
		if gap := calls[i+k+1].at.Sub(c.at); gap < want {
			t.Errorf("retry %d came after %v, want a backoff of at least %v", k+1, gap, want)
		}
	}
	// Every other batch was handed once and succeeded.
	handedBatches := len(calls) - failures
	for _, c := range calls {
		if c.failed {
			continue
		}
		handedBatches--
	}
	if handedBatches != 0 {
		t.Errorf("%d successful calls missing", handedBatches)
	}
}

// After its context is cancelled Consume returns nil; a new Consume of the
// same group resumes right after the last committed batch: no record is
// skipped, and the only records handed twice are those of the batch that had
// not been committed (none when the last batch succeeded).
func TestConsumeResumesAfterCancel(t *testing.T) {
	needKafka(t)
	tests := []struct {
		name      string
		lastFails bool // the batch in hand at cancel fails (else it succeeds)
	}{
		{"cancel during a batch that succeeds", false},
		{"cancel during a batch that fails", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const parts = 3
			topic := newTopic(t, parts)
			end := produce(t, topic, 90)
			group := uniqueName(t, "group")

			// Run 1: stop at the first batch that reaches 30 records.
			var mu sync.Mutex
			run1 := map[pos]int{} // handled successfully
			var stopBatch []pos
			callsAfterStop := 0
			c1 := startConsumer(t, consumerConfig(group, 10, topic), func(cancel context.CancelFunc) stream.BatchHandler {
				return func(ctx context.Context, msgs []kafka.Message) error {
					mu.Lock()
					defer mu.Unlock()
					if stopBatch != nil {
						callsAfterStop++ // failed: it stays uncommitted
						return errors.New("handed after the stop")
					}
					if len(run1)+len(msgs) >= 30 {
						stopBatch = positions(msgs)
						cancel()
						if tt.lastFails {
							return errors.New("injected failure at shutdown")
						}
					}
					for _, m := range msgs {
						run1[pos{m.Partition, m.Offset}]++
					}
					return nil
				}
			})
			if err := c1.wait(t); err != nil {
				t.Fatalf("run 1: Consume returned %v after cancel, want nil", err)
			}
			mu.Lock()
			if callsAfterStop > 0 {
				// Those batches failed, so they are uncommitted like the
				// rest of the tail; TestConsumeStartsNoBatchAfterCancel
				// covers whether they should have been handed at all.
				t.Logf("run 1: handler called %d times after the context was cancelled", callsAfterStop)
			}
			// What run 1 must have committed: everything it handled.
			wantCommitted := map[int]int64{}
			for p := range parts {
				wantCommitted[p] = -1
			}
			for ps := range run1 {
				wantCommitted[ps.p] = max(wantCommitted[ps.p], ps.o+1)
			}
			mu.Unlock()
			got := committed(t, group, topic, parts)
			if !maps(got, wantCommitted) {
				t.Fatalf("run 1 committed %v, want %v (one past the last handled record of each partition)", got, wantCommitted)
			}

			// Run 2: same group, until every record is handled.
			run2 := map[pos]int{}
			var run2Order []pos
			c2 := startConsumer(t, consumerConfig(group, 10, topic), func(context.CancelFunc) stream.BatchHandler {
				return func(ctx context.Context, msgs []kafka.Message) error {
					mu.Lock()
					defer mu.Unlock()
					for _, m := range msgs {
						run2[pos{m.Partition, m.Offset}]++
						run2Order = append(run2Order, pos{m.Partition, m.Offset})
					}
					return nil
				}
			})
			total := sumOffsets(end)
			waitFor(t, 15*time.Second, "run 2 to hand the rest", func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				n := len(run2)
				for ps := range run1 {
					if run2[ps] == 0 {
						n++
					}
				}
				return int64(n) >= total, fmt.Sprintf("%d of %d handled in the two runs", n, total)
			})
			if err := c2.stop(t); err != nil {
				t.Fatalf("run 2: Consume returned %v, want nil", err)
			}

			mu.Lock()
			defer mu.Unlock()
			// Run 2 starts each partition at the committed offset.
			firstOf := map[int]int64{}
			for _, ps := range run2Order {
				if _, ok := firstOf[ps.p]; !ok {
					firstOf[ps.p] = ps.o
				}
			}
			for p := range parts {
				want := max(wantCommitted[p], 0)
				if want == end[p] {
					continue
				}
				if firstOf[p] != want {
					t.Errorf("run 2 began partition %d at offset %d, want the committed offset %d", p, firstOf[p], want)
				}
			}
			// Together the runs handle everything; run 2 hands again only
			// what run 1 attempted but did not commit: the failed batch.
			attempted := map[pos]bool{}
			for ps := range run1 {
				attempted[ps] = true
			}
			var wantRedelivered []pos
			if tt.lastFails {
				wantRedelivered = slices.Clone(stopBatch)
				for _, ps := range stopBatch {
					attempted[ps] = true
				}
			}
			union := map[pos]int{}
			for ps, n := range run1 {
				union[ps] += n
			}
			var redelivered []pos
			for ps, n := range run2 {
				if n != 1 {
					t.Errorf("run 2 handed %v %d times", ps, n)
				}
				if attempted[ps] {
					redelivered = append(redelivered, ps)
				}
				union[ps] = 1
			}
			checkEachOnce(t, union, end)
			sortPos(redelivered)
			sortPos(wantRedelivered)
			if !slices.Equal(redelivered, wantRedelivered) {
				t.Errorf("run 2 handed again %v, want exactly the uncommitted batch %v", redelivered, wantRedelivered)
			}
		})
	}
}

// Once its context is cancelled, Consume finishes the batch in hand but
// does not start another one, even when the reader has more records buffered.
// (kafka-go's FetchMessage picks at random between a done context and a
// buffered record, so this is tried several times.)
//
// Known bug: Consume calls reader.FetchMessage(ctx) with the cancelled ctx,
// and FetchMessage's select may pick a buffered message over ctx.Done(), so
// a new batch is handed (and committed) after shutdown was requested.
func TestConsumeStartsNoBatchAfterCancel(t *testing.T) {
	needKafka(t)
	t.Parallel()
	topic := newTopic(t, 1)
	produce(t, topic, 200)
	const trials = 10
	extra := 0
	for trial := range trials {
		group := uniqueName(t, fmt.Sprintf("group-%d", trial))
		var mu sync.Mutex
		calls := 0
		c := startConsumer(t, consumerConfig(group, 5, topic), func(cancel context.CancelFunc) stream.BatchHandler {
			return func(ctx context.Context, msgs []kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == 1 {
					// Let the reader fill its queue, then stop.
					time.Sleep(20 * time.Millisecond)
					cancel()
				}
				return nil
			}
		})
		if err := c.wait(t); err != nil {
			t.Fatalf("trial %d: Consume returned %v, want nil", trial, err)
		}
		mu.Lock()
		extra += calls - 1
		mu.Unlock()
	}
	if extra > 0 {
		t.Errorf("in %d trials, %d batches were handed after the context was cancelled; want none", trials, extra)
	}
}

func sortPos(ps []pos) {
	slices.SortFunc(ps, func(a, b pos) int {
		if a.p != b.p {
			return a.p - b.p
		}
		return int(a.o - b.o)
	})
}

// A group that has never committed starts at the earliest offset: records
// produced before it existed, and already consumed by another group, are all
// handed to it.
func TestConsumeNewGroupStartsAtEarliest(t *testing.T) {
	needKafka(t)
	t.Parallel()
	topic := newTopic(t, 2)
	produce(t, topic, 20)
	consumeAll := func(group string, want int64) map[pos]int {
		var mu sync.Mutex
		seen := map[pos]int{}
		var firsts []pos
		c := startConsumer(t, consumerConfig(group, 100, topic), func(context.CancelFunc) stream.BatchHandler {
			return func(ctx context.Context, msgs []kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					if seen[pos{m.Partition, m.Offset}] == 0 && !slices.ContainsFunc(firsts, func(p pos) bool { return p.p == m.Partition }) {
						firsts = append(firsts, pos{m.Partition, m.Offset})
					}
					seen[pos{m.Partition, m.Offset}]++
				}
				return nil
			}
		})
		waitFor(t, 15*time.Second, group+" to hand every record", func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return int64(len(seen)) >= want, fmt.Sprintf("%d of %d", len(seen), want)
		})
		if err := c.stop(t); err != nil {
			t.Fatalf("Consume: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, f := range firsts {
			if f.o != 0 {
				t.Errorf("group %s began partition %d at offset %d, want 0", group, f.p, f.o)
			}
		}
		return seen
	}
	consumeAll(uniqueName(t, "group-a"), 20)
	end := produce(t, topic, 10)
	seen := consumeAll(uniqueName(t, "group-b"), 30)
	checkEachOnce(t, seen, end)
}

// groupLagChecker returns a function that checks GroupLag of group.
func groupLagChecker(t *testing.T, group string, parts int) func(what string, want int64, topics ...string) {
	return func(what string, want int64, topics ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := stream.GroupLag(ctx, client(), group, topics)
		if err != nil {
			t.Errorf("%s: GroupLag: %v; want lag %d", what, err, want)
			return
		}
		if got != want {
			t.Errorf("%s: lag %d, want %d (end %v, committed %v)", what, got, want,
				endOffsets(t, topics[0]), committed(t, group, topics[0], parts))
		}
	}
}

// GroupLag is end − committed summed over the partitions: 0 when the group
// has committed everything, and the number of records produced since.
func TestGroupLag(t *testing.T) {
	needKafka(t)
	t.Parallel()
	const parts = 3
	topic := newTopic(t, parts)
	group := uniqueName(t, "group")
	lag := groupLagChecker(t, group, parts)
	end := produce(t, topic, 30)
	c := startConsumer(t, consumerConfig(group, 100, topic), func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error { return nil }
	})
	waitFor(t, 15*time.Second, "the group to commit everything", func() (bool, string) {
		got, err := fetchCommitted(context.Background(), group, topic, parts)
		return err == nil && maps(got, end), fmt.Sprintf("committed %v (%v), end %v", got, err, end)
	})
	if err := c.stop(t); err != nil {
		t.Fatal(err)
	}
	lag("everything committed", 0, topic)
	end = produce(t, topic, 7)
	lag("7 records produced after the last commit", 7, topic)
	end = produce(t, topic, 5)
	lag("12 records produced after the last commit", 12, topic)
}

// Before a group has committed a partition, all of that partition's records
// are lag: N before the group exists or while its first batch is in hand,
// N − handled after a first batch, and an empty partition adds nothing.
//
// Known bugs: GroupLag asks only for LastOffsetOf, so for a partition the
// group never committed (-1) it falls back to PartitionOffsets.FirstOffset,
// which kafka-go leaves at -1, and counts end+1; and kfake answers
// OffsetFetch of a group that does not exist yet with GROUP_ID_NOT_FOUND,
// which GroupLag returns as an error instead of "nothing committed".
func TestGroupLagCountsUncommittedPartitions(t *testing.T) {
	needKafka(t)
	t.Parallel()
	const parts = 3
	topic := newTopic(t, parts)
	empty := newTopic(t, 2)
	group := uniqueName(t, "group")
	lag := groupLagChecker(t, group, parts)
	end := produce(t, topic, 30)
	total := sumOffsets(end)
	lag("group not created yet", total, topic)
	lag("group not created yet, empty topic", 0, empty)

	// A member joins and holds its first batch: nothing is committed yet.
	var mu sync.Mutex
	handled := 0
	inBatch, release := make(chan struct{}), make(chan struct{})
	c := startConsumer(t, consumerConfig(group, 4, topic), func(cancel context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error {
			mu.Lock()
			first := handled == 0
			mu.Unlock()
			if !first {
				return errors.New("only one batch")
			}
			close(inBatch)
			<-release
			mu.Lock()
			handled += len(msgs)
			mu.Unlock()
			cancel()
			return nil
		}
	})
	select {
	case <-inBatch:
	case <-time.After(15 * time.Second):
		t.Fatal("no batch handed within 15s")
	}
	lag("group joined, nothing committed", total, topic)
	lag("group joined, nothing committed, with an empty topic", total, topic, empty)
	close(release)
	if err := c.wait(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := int64(handled)
	mu.Unlock()
	lag(fmt.Sprintf("after one committed batch of %d", n), total-n, topic)

	c = startConsumer(t, consumerConfig(group, 100, topic, empty), func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error { return nil }
	})
	waitFor(t, 15*time.Second, "the group to commit everything", func() (bool, string) {
		got, err := fetchCommitted(context.Background(), group, topic, parts)
		return err == nil && maps(got, end), fmt.Sprintf("committed %v (%v), end %v", got, err, end)
	})
	if err := c.stop(t); err != nil {
		t.Fatal(err)
	}
	lag("everything committed; the empty topic never had a record", 0, topic, empty)
}

// A batch keeps being retried until the downstream is back, however long
// that takes: each retry gets a usable context. This takes over 30 s, so it
// runs only with KAKIN_SLOW_TESTS=1.
//
// Known bug: Consume creates one 30-second work context per batch and
// handleWithRetry passes that same context to every attempt, so once a batch
// has been failing for 30 s every later attempt gets a context that is
// already done and fails at once: the consumer is wedged until restarted,
// however healthy the downstream is again.
func TestConsumeRetriesOutlastAnOutageOfMoreThan30s(t *testing.T) {
	needKafka(t)
	if os.Getenv("KAKIN_SLOW_TESTS") == "" {
		t.Skip("takes ~40s; set KAKIN_SLOW_TESTS=1 to run")
	}
	t.Parallel()
	topic := newTopic(t, 1)
	produce(t, topic, 5)
	const outage = 31 * time.Second
	var mu sync.Mutex
	var start time.Time
	var attempts []string
	handled := false
	c := startConsumer(t, consumerConfig(uniqueName(t, "group"), 10, topic), func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if start.IsZero() {
				start = time.Now()
			}
			since := time.Since(start).Round(100 * time.Millisecond)
			// Any real downstream call fails at once on a done context.
			if err := ctx.Err(); err != nil {
				attempts = append(attempts, fmt.Sprintf("%v: context: %v", since, err))
				return err
			}
			if time.Since(start) < outage {
				attempts = append(attempts, fmt.Sprintf("%v: downstream down", since))
				return errors.New("downstream down")
			}
			attempts = append(attempts, fmt.Sprintf("%v: ok", since))
			handled = true
			return nil
		}
	})
	deadline := time.Now().Add(outage + 10*time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		ok := handled
		mu.Unlock()
		if ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !handled {
		t.Errorf("the batch was never handled after a %v outage; attempts:\n%s", outage, strings.Join(attempts, "\n"))
	}
}

// Each attempt at a batch gets the consumer's AttemptTimeout as its deadline
// (DefaultAttemptTimeout when unset): a handler that waits longer than the
// default — the rater's re-rate waits for the aggregator — is not cut when
// its consumer allows more, and one that outlives its deadline is cut and
// handed the batch again. The handlers' work is a wait of their own with a
// deadline (as the re-rate's), so nothing depends on how fast the machine is:
// the consumer's deadline is either far beyond it or before it.
func TestConsumeAttemptDeadline(t *testing.T) {
	needKafka(t)
	const work = 300 * time.Millisecond
	tests := []struct {
		name     string
		attempt  time.Duration // ConsumerConfig.AttemptTimeout
		wantDL   time.Duration // the deadline the handler must be given
		work     time.Duration // how long the handler's own wait lasts
		wantCuts int           // attempts cut by the consumer's deadline
	}{
		{name: "default", attempt: 0, wantDL: stream.DefaultAttemptTimeout},
		{name: "configured longer than the default", attempt: 3 * time.Minute, wantDL: 3 * time.Minute},
		{name: "long handler within its configured deadline is not cut", attempt: work + 20*time.Second, wantDL: work + 20*time.Second, work: work},
		{name: "handler outlasting its deadline is cut and retried", attempt: work / 2, wantDL: work / 2, work: work, wantCuts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			topic := newTopic(t, 1)
			produce(t, topic, 1)
			cfg := consumerConfig(uniqueName(t, "group"), 10, topic)
			cfg.AttemptTimeout = tt.attempt
			type attempt struct {
				deadline, at time.Time
				hasDL, cut   bool
			}
			var mu sync.Mutex
			var attempts []attempt
			calls := 0
			handled := make(chan struct{})
			started := time.Now()
			c := startConsumer(t, cfg, func(context.CancelFunc) stream.BatchHandler {
				return func(ctx context.Context, msgs []kafka.Message) error {
					a := attempt{at: time.Now()}
					a.deadline, a.hasDL = ctx.Deadline()
					mu.Lock()
					calls++
					n := calls
					mu.Unlock()
					if tt.work > 0 && n == 1 { // the retry finishes at once
						own, cancel := context.WithTimeout(ctx, tt.work)
						<-own.Done()
						cancel()
						a.cut = ctx.Err() != nil
					}
					mu.Lock()
					attempts = append(attempts, a)
					mu.Unlock()
					if a.cut {
						return fmt.Errorf("cut: %w", ctx.Err())
					}
					close(handled)
					return nil
				}
			})
			select {
			case <-handled:
			case <-time.After(60 * time.Second):
				t.Fatal("the batch was not handled within 60s")
			}
			if err := c.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(attempts) != 1+tt.wantCuts {
				t.Fatalf("%d attempts %+v, want %d", len(attempts), attempts, 1+tt.wantCuts)
			}
			for i, a := range attempts {
				// The attempt's deadline is set when it starts: after
				// the consumer started, before the handler ran.
				if !a.hasDL || a.deadline.Before(started.Add(tt.wantDL)) || a.deadline.After(a.at.Add(tt.wantDL)) {
					t.Errorf("attempt %d: deadline %v (set: %v), want %v after the attempt began (between %v and %v)",
						i, a.deadline, a.hasDL, tt.wantDL, started.Add(tt.wantDL), a.at.Add(tt.wantDL))
				}
				if wantCut := i < tt.wantCuts; a.cut != wantCut {
					t.Errorf("attempt %d: cut by the consumer's deadline: %v, want %v", i, a.cut, wantCut)
				}
			}
		})
	}
}
