package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/segmentio/kafka-go"
)

// BatchHandler handles one batch of records. It returns nil only when every
// record's outcome is durably stored downstream; the batch is then committed.
// On error the same batch is handed again (after a backoff) until it succeeds
// or the consumer stops: a batch is never skipped.
type BatchHandler func(ctx context.Context, msgs []kafka.Message) error

// ConsumerConfig configures one stage's consumer-group loop.
type ConsumerConfig struct {
	Stage   string // metric label and log attribute
	Brokers []string
	// Dialer and Transport are the process's Conn's (TLS, SASL): the
	// reader dials through Dialer, the lag and outage probes through both.
	// Nil: plaintext without SASL.
	Dialer         *kafka.Dialer
	Transport      *kafka.Transport
	Group          string
	Topics         []string
	MaxBatch       int           // records per batch at most
	MaxWait        time.Duration // how long to wait to fill a batch once its first record is in
	SessionTimeout time.Duration // group session timeout: how fast a dead member's partitions move
	// AttemptTimeout is the deadline of one attempt at a batch: the
	// handler's context ends after it, the attempt counts as failed and the
	// batch is handed again. It also bounds how long a batch in flight
	// delays stopping. 0 is DefaultAttemptTimeout; a stage whose handler may
	// legitimately wait longer (the rater's re-rate waits for the
	// aggregator) sets its own.
	AttemptTimeout time.Duration
	Log            *slog.Logger
	Metrics        *Metrics
	// Health, when set, tells readiness checks whether the consumer can
	// fetch (see Health). Consume keeps it up to date.
	Health *Health
	// Now is the clock of the blocked-since time; clock.Now when nil.
	Now func() time.Time
}

func (c *ConsumerConfig) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 50 * time.Millisecond
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Health == nil {
		c.Health = &Health{}
	}
	if c.Now == nil {
		c.Now = clock.Now
	}
}

const (
	// FetchBackoffMin and FetchBackoffMax bound the wait between failed
	// fetches (the broker unreachable, the group coordinator gone): it
	// starts at the minimum and doubles up to the maximum.
	FetchBackoffMin = 100 * time.Millisecond
	FetchBackoffMax = 5 * time.Second
	// commitStopGrace is how long a commit in flight may go on after the
	// consumer was told to stop: an unfinished commit only means the batch
	// is handed again later, while a commit against an unreachable broker
	// would otherwise hold the stop for commitTimeout.
	commitStopGrace = 2 * time.Second
)

// Health is whether a consumer can fetch from Kafka. While fetches fail
// (the broker is down or unreachable) the consumer neither fails nor
// exits: it keeps retrying with a backoff, Ready returns an error naming
// since when, and the stage's kakin_stage_kafka_up gauge is 0 and
// kakin_stage_kafka_blocked_since_seconds holds the outage's start. The
// zero value is ready; it may be shared with readiness checks.
type Health struct {
	mu      sync.Mutex
	since   time.Time // first failed fetch of the current outage; zero while fetching works
	lastErr error
}

// Ready returns nil unless the consumer's fetches are failing.
func (h *Health) Ready(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return nil
	}
	return fmt.Errorf("cannot fetch from kafka since %s: %w", h.since.UTC().Format(time.RFC3339), h.lastErr)
}

// BlockedSince returns when the current outage started; zero when fetching
// works.
func (h *Health) BlockedSince() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since
}

// failed records a failed fetch (or probe) at now and reports whether it
// started a new outage.
func (h *Health) failed(now time.Time, err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if h.since.IsZero() {
		h.since = now
		return true
	}
	return false
}

// ok records that fetching works and returns since when it had not.
func (h *Health) ok() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	since := h.since
	h.since, h.lastErr = time.Time{}, nil
	return since
}

// Consume runs the consumer-group loop until ctx is done. A new group starts
// from the earliest offset, so nothing already in a topic is skipped. Offsets
// are committed only after handle succeeded for the batch (at-least-once); a
// batch in flight when ctx ends is finished, bounded by cfg.AttemptTimeout,
// before Consume returns.
//
// A failing fetch (the broker down or unreachable) is not an error of
// Consume: it waits FetchBackoffMin doubling up to FetchBackoffMax and
// fetches again, reporting the outage through cfg.Health and the stage's
// kakin_stage_kafka_up and kakin_stage_kafka_blocked_since_seconds gauges,
// until the broker answers again or ctx ends. Consume returns nil when ctx
// ends.
func Consume(ctx context.Context, cfg ConsumerConfig, handle BatchHandler) error {
	cfg.defaults()
	if cfg.Metrics != nil { // the consumer's own error series exist from the start at 0, so rate() and increase() see the first error
		for _, kind := range []string{"fetch", "commit", "handle"} {
			cfg.Metrics.Errors.WithLabelValues(cfg.Stage, kind)
		}
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		Dialer:            cfg.conn().dialer(),
		GroupID:           cfg.Group,
		GroupTopics:       cfg.Topics,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           100 * time.Millisecond,
		QueueCapacity:     cfg.MaxBatch,
		CommitInterval:    0, // commits are explicit and synchronous, per batch
		HeartbeatInterval: time.Second,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		Logger: kafka.LoggerFunc(func(msg string, args ...any) {
			cfg.Log.Debug("kafka reader info: "+fmt.Sprintf(msg, args...), "stage", cfg.Stage)
		}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			cfg.Log.Debug("kafka reader: "+fmt.Sprintf(msg, args...), "stage", cfg.Stage)
		}),
	})
	defer reader.Close()

	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	if cfg.Metrics != nil {
		go watchLag(lagCtx, cfg)
	}

	log := cfg.Log.With("stage", cfg.Stage, "group", cfg.Group)
	log.Info("consumer started", "topics", cfg.Topics)
	cfg.Health.ok() // nothing failed yet in this run
	cfg.reportUp()
	fetch := fetcher{cfg: cfg, log: log, reader: reader, backoff: FetchBackoffMin}
	unsettled := uncommitted{cfg: cfg, log: log}
	batch := make([]kafka.Message, 0, cfg.MaxBatch)
	for {
		if ctx.Err() != nil { // a fetch with a done context may still return a buffered record
			log.Info("consumer stopped")
			return nil
		}
		batch = batch[:0]
		first, ok := fetch.first(ctx, unsettled.pending())
		if !ok {
			if ctx.Err() != nil {
				log.Info("consumer stopped")
				return nil
			}
			if unsettled.pending() && !fetch.blocked {
				unsettled.commit(ctx, reader, nil)
			}
			continue
		}
		batch = append(batch, first)
		fillCtx, cancel := context.WithTimeout(ctx, cfg.MaxWait)
		for len(batch) < cfg.MaxBatch {
			m, err := reader.FetchMessage(fillCtx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()

		// The batch in hand is finished even if ctx ends now (bounded by
		// cfg.AttemptTimeout): stopping halfway would only cause a redelivery.
		if err := handleWithRetry(ctx, cfg, log, batch, handle); err != nil {
			log.Info("consumer stopped", "uncommitted", len(batch))
			return nil
		}
		unsettled.commit(ctx, reader, batch)
	}
}

// commitFault, set only by tests (export_test.go), may fail a commit
// before it is sent, as a broker that went away would.
var commitFault atomic.Pointer[func(msgs []kafka.Message) error]

// commitMessages commits the offsets of msgs through the reader.
func commitMessages(ctx context.Context, r *kafka.Reader, msgs ...kafka.Message) error {
	if f := commitFault.Load(); f != nil {
		if err := (*f)(msgs); err != nil {
			return err
		}
	}
	return r.CommitMessages(ctx, msgs...)
}

// uncommitted holds, per topic and partition, the last handled record whose
// offset a failed commit did not store. The reader does not hand a batch
// again after a failed commit (it keeps its own position), so without a
// retry the group's offset would stay behind until the next record of that
// partition, or for ever on a quiet one: lag that never drains, and a
// redelivery on the next rebalance. Every later commit carries these too
// (the broker keeps the highest offset per partition), and an idle consumer
// retries them every commitRetryEvery.
type uncommitted struct {
	cfg  ConsumerConfig
	log  *slog.Logger
	last map[string]kafka.Message
}

// commitRetryEvery is how long an idle consumer with uncommitted offsets
// waits for a record before it retries the commit.
const commitRetryEvery = time.Second

func (u *uncommitted) pending() bool { return len(u.last) > 0 }

// commit stores the offsets of batch and of every earlier batch whose
// commit failed; on failure it keeps them for the next try.
func (u *uncommitted) commit(ctx context.Context, reader *kafka.Reader, batch []kafka.Message) {
	msgs := batch
	if len(u.last) > 0 {
		msgs = make([]kafka.Message, 0, len(batch)+len(u.last))
		msgs = append(msgs, batch...)
		for _, m := range u.last {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return
	}
	cctx, done := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(commitStopGrace, done) })
	err := commitMessages(cctx, reader, msgs...)
	stopGrace()
	done()
	if err == nil {
		if len(u.last) > 0 {
			u.log.Info("offsets committed after an earlier commit failed", "partitions", len(u.last))
		}
		clear(u.last)
		return
	}
	// Not fatal: the records are handled; the commit is tried again with
	// the next batch, or after commitRetryEvery when none comes. A
	// rebalance meanwhile hands them to a member that handles them again,
	// idempotently.
	u.log.Warn("commit failed; retrying it with the next batch or within a second", "err", err)
	u.cfg.observeError("commit")
	if u.last == nil {
		u.last = map[string]kafka.Message{}
	}
	for _, m := range batch {
		k := m.Topic + "/" + strconv.Itoa(m.Partition)
		if prev, ok := u.last[k]; !ok || m.Offset > prev.Offset {
			u.last[k] = m
		}
	}
}

// fetcher fetches the first record of each batch, riding out broker
// outages: a failed fetch is retried after a backoff, never returned.
type fetcher struct {
	cfg     ConsumerConfig
	log     *slog.Logger
	reader  *kafka.Reader
	backoff time.Duration // the wait after the next failure
	blocked bool          // the last fetch (or probe) failed
}

// first returns the next record, or false when this attempt brought none
// (a failure, after its backoff; a probe of a blocked consumer; or ctx
// ended). While blocked it fetches with a deadline of one backoff and,
// when that brings neither a record nor an error, asks the broker
// directly (Ping), so an idle topic does not keep a recovered consumer
// reported as blocked.
//
// With idle set (offsets wait for a retried commit) a fetch that brings
// nothing within commitRetryEvery returns false too, so the caller can retry
// the commit on a quiet partition.
func (f *fetcher) first(ctx context.Context, idle bool) (kafka.Message, bool) {
	fctx, cancel := ctx, context.CancelFunc(func() {})
	switch {
	case f.blocked:
		fctx, cancel = context.WithTimeout(ctx, f.backoff)
	case idle:
		fctx, cancel = context.WithTimeout(ctx, commitRetryEvery)
	}
	m, err := f.reader.FetchMessage(fctx)
	cancel()
	switch {
	case err == nil:
		f.recovered()
		return m, true
	case ctx.Err() != nil:
		return kafka.Message{}, false
	case f.blocked && fctx.Err() != nil: // the probe deadline, not a fetch error
		if perr := f.cfg.conn().Ping(ctx); perr != nil {
			f.failed(perr)
			return kafka.Message{}, false
		}
		f.recovered()
		return kafka.Message{}, false
	case idle && fctx.Err() != nil: // quiet for commitRetryEvery
		return kafka.Message{}, false
	}
	f.failed(fmt.Errorf("fetch: %w", err))
	select {
	case <-ctx.Done():
	case <-time.After(f.backoff):
	}
	f.backoff = min(f.backoff*2, FetchBackoffMax)
	return kafka.Message{}, false
}

func (f *fetcher) failed(err error) {
	f.blocked = true
	f.cfg.observeError("fetch")
	if f.cfg.Health.failed(f.cfg.Now(), err) {
		f.log.Warn("cannot fetch from kafka; retrying until it answers (the stage is not ready meanwhile)", "err", err)
	} else {
		f.log.Debug("kafka still unreachable", "err", err, "backoff", f.backoff)
	}
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.KafkaUp.WithLabelValues(f.cfg.Stage).Set(0)
		f.cfg.Metrics.KafkaBlockedSince.WithLabelValues(f.cfg.Stage).Set(float64(f.cfg.Health.BlockedSince().Unix()))
	}
}

func (f *fetcher) recovered() {
	if !f.blocked {
		return
	}
	f.blocked, f.backoff = false, FetchBackoffMin
	since := f.cfg.Health.ok()
	f.log.Info("fetching from kafka again", "blocked_since", since)
	f.cfg.reportUp()
}

// reportUp sets the stage's gauges to "fetching works".
func (c *ConsumerConfig) reportUp() {
	if c.Metrics != nil {
		c.Metrics.KafkaUp.WithLabelValues(c.Stage).Set(1)
		c.Metrics.KafkaBlockedSince.WithLabelValues(c.Stage).Set(0)
	}
}

const (
	// DefaultAttemptTimeout bounds one attempt at a batch when the
	// consumer does not set its own AttemptTimeout.
	DefaultAttemptTimeout = 30 * time.Second
	// commitTimeout bounds one commit of a batch's offsets.
	commitTimeout = 30 * time.Second
)

// handleWithRetry hands the batch to handle until it succeeds, each attempt
// with a fresh deadline (cfg.AttemptTimeout) that stopping does not cancel,
// and backs off between attempts. It gives up (with an error) only when
// stop is done.
func handleWithRetry(stop context.Context, cfg ConsumerConfig, log *slog.Logger, batch []kafka.Message, handle BatchHandler) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		work, cancel := context.WithTimeout(context.WithoutCancel(stop), cfg.AttemptTimeout)
		err := handle(work, batch)
		cancel()
		if err == nil {
			if cfg.Metrics != nil {
				cfg.Metrics.BatchSize.WithLabelValues(cfg.Stage).Observe(float64(len(batch)))
				cfg.Metrics.BatchSeconds.WithLabelValues(cfg.Stage).Observe(time.Since(start).Seconds())
			}
			return nil
		}
		cfg.observeError("handle")
		log.Error("batch failed; retrying the same batch", "attempt", attempt, "records", len(batch), "err", err, "backoff", backoff)
		select {
		case <-stop.Done():
			return errors.Join(err, stop.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// conn is the Conn the consumer's clients use.
func (c *ConsumerConfig) conn() Conn {
	return Conn{Brokers: c.Brokers, Dialer: c.Dialer, Transport: c.Transport}
}

func (c *ConsumerConfig) observeError(kind string) {
	if c.Metrics != nil {
		c.Metrics.Errors.WithLabelValues(c.Stage, kind).Inc()
	}
}

// watchLag reports the group's lag (end offset − committed offset, summed over
// all partitions of its topics) every few seconds. It asks the broker rather
// than the reader, so the figure is the whole group's, not one member's.
func watchLag(ctx context.Context, cfg ConsumerConfig) {
	client := cfg.conn().Client(5 * time.Second)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if lag, err := GroupLag(ctx, client, cfg.Group, cfg.Topics); err == nil {
			cfg.Metrics.Lag.WithLabelValues(cfg.Stage).Set(float64(lag))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// GroupLag returns how many records of topics the group has not committed yet.
func GroupLag(ctx context.Context, client *kafka.Client, group string, topics []string) (int64, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, err
	}
	listReq := map[string][]kafka.OffsetRequest{}
	fetchReq := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			listReq[t.Name] = append(listReq[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
			fetchReq.Topics[t.Name] = append(fetchReq.Topics[t.Name], p.ID)
		}
	}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: listReq})
	if err != nil {
		return 0, err
	}
	committed, err := client.OffsetFetch(ctx, fetchReq)
	if err != nil {
		return 0, err
	}
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return 0, committed.Error
	}
	var lag int64
	for topic, parts := range ends.Topics {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			done[p.Partition] = p.CommittedOffset
		}
		for _, p := range parts {
			c, ok := done[p.Partition]
			if !ok || c < 0 { // nothing committed: everything still in the log is lag
				c = max(p.FirstOffset, 0)
			}
			if d := p.LastOffset - c; d > 0 {
				lag += d
			}
		}
	}
	return lag, nil
}

// GroupCaughtUp waits for a consumer group to catch up with its topics: the
// rater's re-rate waits until the aggregator has stored every output the
// rater wrote before the request (the lines and parked records that carry
// the customer's records, and the status changes).
type GroupCaughtUp struct {
	Client *kafka.Client
	Group  string
	Topics []string
}

// WaitCaughtUp reads the end offset of every partition of the topics now and
// blocks until the group has committed at least that offset on each one
// (every message written before the call handled), polling every poll, until
// ctx ends.
func (g *GroupCaughtUp) WaitCaughtUp(ctx context.Context, poll time.Duration) error {
	ends, err := g.endOffsets(ctx)
	if err != nil {
		return fmt.Errorf("wait for %s to catch up: %w", g.Group, err)
	}
	req := &kafka.OffsetFetchRequest{GroupID: g.Group, Topics: map[string][]int{}}
	for t, ps := range ends {
		for p := range ps {
			req.Topics[t] = append(req.Topics[t], p)
		}
	}
	if len(req.Topics) == 0 {
		return nil // nothing written yet
	}
	for {
		behind := ""
		res, err := g.Client.OffsetFetch(ctx, req)
		if err == nil && res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
			err = res.Error
		}
		if err == nil {
			committed := map[string]map[int]int64{}
			for t, ps := range res.Topics {
				for _, p := range ps {
					if p.Error == nil {
						if committed[t] == nil {
							committed[t] = map[int]int64{}
						}
						committed[t][p.Partition] = p.CommittedOffset
					}
				}
			}
		check:
			for t, ps := range ends {
				for p, end := range ps {
					if c, ok := committed[t][p]; !ok || c < end {
						behind = fmt.Sprintf("%s/%d at %d of %d", t, p, c, end)
						break check
					}
				}
			}
			if behind == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("wait for %s to catch up: %w (last error: %v)", g.Group, ctx.Err(), err)
			}
			return fmt.Errorf("wait for %s to catch up (%s): %w", g.Group, behind, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// endOffsets returns the end offset of every partition of the topics that
// holds any message.
func (g *GroupCaughtUp) endOffsets(ctx context.Context) (map[string]map[int]int64, error) {
	md, err := g.Client.Metadata(ctx, &kafka.MetadataRequest{Topics: g.Topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of %v: %w", g.Topics, err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := g.Client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %v: %w", g.Topics, err)
	}
	ends := map[string]map[int]int64{}
	for t, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", t, p.Partition, p.Error)
			}
			if p.LastOffset > 0 {
				if ends[t] == nil {
					ends[t] = map[int]int64{}
				}
				ends[t][p.Partition] = p.LastOffset
			}
		}
	}
	return ends, nil
}
