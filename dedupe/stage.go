package dedupe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Producer writes messages that each name their topic, acknowledged.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Windows gives each tenant's duplicate-detection window. loaded is false
// until the tenant settings were read at least once; the stage then claims
// nothing (a claim remembered for too short a time could miss a duplicate).
type Windows interface {
	Window(tenant string) (window time.Duration, loaded bool)
}

// FixedWindow is the same window for every tenant, always loaded.
type FixedWindow time.Duration

// Window returns w.
func (w FixedWindow) Window(string) (time.Duration, bool) { return time.Duration(w), true }

// DefaultClaimTimeout bounds one batch's Redis round trip.
const DefaultClaimTimeout = 10 * time.Second

// Options configure a Stage. Zero values take the defaults.
type Options struct {
	// Windows are the tenants' windows (FixedWindow(35 days) when nil).
	Windows Windows
	// FutureSkew is how far in the future ingest accepts event times. A
	// claim is kept for window + FutureSkew after its record was received:
	// an exact repeat that ingest still accepts (event time within the
	// window) is then always found.
	FutureSkew time.Duration
	// ClaimTimeout bounds one batch's Redis round trip (DefaultClaimTimeout).
	ClaimTimeout time.Duration
	// Registerer takes the stage's own metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// DefaultWindow is the duplicate-detection window of a tenant that has no
// window of its own: a billing month plus late arrivals.
const DefaultWindow = 35 * 24 * time.Hour

// Stage sorts raw records into first-seen and duplicates.
type Stage struct {
	claims   *ClaimStore
	producer Producer
	metrics  *stream.Metrics
	opts     Options
	now      func() time.Time
	health   *redisHealth
}

// NewStage returns the dedupe stage.
func NewStage(claims *ClaimStore, p Producer, m *stream.Metrics, opts Options) *Stage {
	if opts.Windows == nil {
		opts.Windows = FixedWindow(DefaultWindow)
	}
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = DefaultClaimTimeout
	}
	return &Stage{claims: claims, producer: p, metrics: m, opts: opts, now: clock.Now,
		health: newRedisHealth(opts.Registerer)}
}

// StageName labels this stage's metrics and logs.
const StageName = "dedupe"

// errWindowsNotLoaded fails a batch while the tenant windows are unknown.
var errWindowsNotLoaded = errors.New("dedupe: tenant windows not loaded yet")

// redisHealth exports whether the claim path works. While Redis does not
// answer the stage consumes nothing: the batch fails, the consumer hands it
// again after a backoff, and these gauges say since when.
type redisHealth struct {
	mu           sync.Mutex
	up           prometheus.Gauge
	blockedSince prometheus.Gauge
	claimSeconds prometheus.Histogram
	since        time.Time
}

func newRedisHealth(reg prometheus.Registerer) *redisHealth {
	h := &redisHealth{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_dedupe_redis_up",
			Help: "1 when the last claim round trip to Redis succeeded (or none was tried yet), 0 while it fails."}),
		blockedSince: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_dedupe_blocked_since_seconds",
			Help: "Unix time of the first failed claim of the current Redis outage (dedupe consumes nothing until Redis answers); 0 when not blocked."}),
		claimSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kakin_dedupe_claim_seconds",
			Help: "Time of one batch's claim round trip to Redis.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	h.up.Set(1)
	if reg != nil {
		reg.MustRegister(h.up, h.blockedSince, h.claimSeconds)
	}
	return h
}

func (h *redisHealth) failed(at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up.Set(0)
	if h.since.IsZero() {
		h.since = at
		h.blockedSince.Set(float64(at.Unix()))
	}
}

func (h *redisHealth) ok(took time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up.Set(1)
	h.since = time.Time{}
	h.blockedSince.Set(0)
	h.claimSeconds.Observe(took.Seconds())
}

// HandleBatch claims every record of the batch in one Redis round trip, then
// writes each record to exactly one output topic. It returns nil only when all
// outputs are acknowledged, so the batch may then be committed.
//
// A record is claimed by the headers ingest set on it (schemas.RawHeaders),
// without decoding its event; the event is decoded only for a duplicate's
// record, and for a record without those headers.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	now := s.now().UTC()
	events := make([]*schemas.UsageEvent, len(msgs)) // decoded so far
	reqs := make([]ClaimRequest, 0, len(msgs))
	reqIdx := make([]int, 0, len(msgs))
	out := make([]kafka.Message, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		tenant, id, payloadHash, ok := schemas.ParseRawHeaders(m.Headers)
		received := m.Time // ingest's receive time
		if !ok || received.IsZero() {
			ev, err := decodeEvent(m)
			if err != nil {
				out[i] = malformed(*m, now, err)
				continue
			}
			events[i] = ev
			tenant, id, payloadHash = ev.Tenant, ev.ID, schemas.PayloadHash(ev)
			if !ev.ReceivedAt.IsZero() {
				received = ev.ReceivedAt
			}
		}
		window, loaded := s.opts.Windows.Window(tenant)
		if !loaded {
			s.metrics.Errors.WithLabelValues(StageName, "windows").Inc()
			return errWindowsNotLoaded
		}
		own := schemas.Claim{Partition: m.Partition, Offset: m.Offset, PayloadHash: fingerprint(payloadHash), ReceivedAt: received}
		if _, err := encodeClaim(own); err != nil { // e.g. a receive time before 1970: it cannot be claimed
			out[i] = malformed(*m, now, err)
			continue
		}
		reqs = append(reqs, ClaimRequest{Tenant: tenant, ID: id, Retention: window + s.opts.FutureSkew, Claim: own})
		reqIdx = append(reqIdx, i)
	}
	held, err := s.claim(ctx, reqs)
	if err != nil {
		return err
	}
	var accepted, duplicates, bad int
	for j, i := range reqIdx {
		m, own := msgs[i], reqs[j].Claim
		first := held[j]
		if first.Partition == own.Partition && first.Offset == own.Offset {
			// This record holds the claim (now, or from before a redelivery).
			// It names its usage.raw position, which every copy of it shares
			// (a batch handled again passes it on again, at a new offset):
			// the rater recognises the record by it.
			out[i] = kafka.Message{Topic: schemas.TopicAccepted, Key: m.Key, Value: m.Value, Time: m.Time,
				Headers: schemas.RawPositionHeaders(make([]kafka.Header, 0, 2), m.Partition, m.Offset)}
			accepted++
			continue
		}
		ev := events[i]
		if ev == nil {
			if ev, err = decodeEvent(&m); err != nil {
				// Its headers claimed it, its body is not an event: park it
				// (the claim stays; a repeat of it is a duplicate).
				out[i] = malformed(m, now, err)
				bad++
				continue
			}
			if !ev.ReceivedAt.IsZero() { // the exact receive time, not the Kafka time's milliseconds
				own.ReceivedAt = ev.ReceivedAt
			}
		}
		// Self and First carry fingerprints computed the same way; First's
		// receive time is the claim's, to the second.
		dup := schemas.Duplicate{Event: *ev, Self: own, First: first,
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
	if bad += len(msgs) - len(reqs); bad > 0 {
		s.metrics.Records.WithLabelValues(StageName, "malformed").Add(float64(bad))
	}
	endToEnd := s.metrics.EndToEnd.WithLabelValues(StageName)
	for _, m := range msgs {
		endToEnd.Observe(now.Sub(m.Time).Seconds())
	}
	return nil
}

// decodeEvent decodes a usage.raw record's event; one without a tenant or
// id is not an event.
func decodeEvent(m *kafka.Message) (*schemas.UsageEvent, error) {
	var ev schemas.UsageEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		return nil, err
	}
	if ev.Tenant == "" || ev.ID == "" {
		return nil, errors.New("no tenant or id")
	}
	return &ev, nil
}

// claim makes the batch's claims in one round trip, bounded by the claim
// timeout, and keeps the Redis health metrics.
func (s *Stage) claim(ctx context.Context, reqs []ClaimRequest) ([]schemas.Claim, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.ClaimTimeout)
	defer cancel()
	start := time.Now()
	held, err := s.claims.Claim(cctx, reqs)
	if err != nil {
		if ctx.Err() == nil { // not a shutdown
			s.metrics.Errors.WithLabelValues(StageName, "redis").Inc()
			s.health.failed(s.now())
		}
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	s.health.ok(time.Since(start))
	return held, nil
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
