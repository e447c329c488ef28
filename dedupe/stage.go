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
	producer stream.Producer
	metrics  *stream.Metrics
	opts     Options
	now      func() time.Time
	health   *redisHealth
}

// NewStage returns the dedupe stage.
func NewStage(claims *ClaimStore, p stream.Producer, m *stream.Metrics, opts Options) *Stage {
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
// outputs are acknowledged, so the batch may then be committed. The stage
// runner (stream.Runner) decodes, parks what it cannot read on usage.unrated
// under the id raw:<partition>:<offset>, writes and counts; process is the
// stage's own logic.
//
// A record is claimed by the headers ingest set on it (schemas.RawHeaders),
// without decoding its event; the event is decoded only for a duplicate's
// record, and for a record without those headers.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	return stream.Runner[rawRecord]{Stage: StageName, Decode: decodeRaw, Process: s.process,
		Producer: s.producer, Metrics: s.metrics, Now: s.now, ParkPrefix: rawPrefix}.HandleBatch(ctx, msgs)
}

// rawPrefix names a parked usage.raw record: raw:<partition>:<offset>.
func rawPrefix(*stream.Message) string { return "raw" }

// rawRecord is what a usage.raw record is claimed by.
type rawRecord struct {
	tenant, id  string
	payloadHash uint64
	received    time.Time           // ingest's receive time
	ev          *schemas.UsageEvent // nil when the headers named the record
}

// decodeRaw reads a record's claim from the headers ingest set, or from its
// event when they are missing (or its Kafka time is).
func decodeRaw(m *stream.Message) (rawRecord, error) {
	tenant, id, payloadHash, ok := schemas.ParseRawHeaders(m.Headers)
	if ok && !m.Time.IsZero() {
		return rawRecord{tenant: tenant, id: id, payloadHash: payloadHash, received: m.Time}, nil
	}
	ev, err := decodeEvent(m.Value)
	if err != nil {
		return rawRecord{}, notAnEvent(err)
	}
	r := rawRecord{tenant: ev.Tenant, id: ev.ID, payloadHash: schemas.PayloadHash(ev), received: m.Time, ev: ev}
	if !ev.ReceivedAt.IsZero() {
		r.received = ev.ReceivedAt
	}
	return r, nil
}

// notAnEvent is the reason a record is parked with.
func notAnEvent(err error) error { return fmt.Errorf("record is not a usage event: %w", err) }

// process claims the batch's records and emits each one's output.
func (s *Stage) process(ctx context.Context, b *stream.Batch[rawRecord]) error {
	reqs := make([]ClaimRequest, 0, len(b.Items))
	reqIdx := make([]int, 0, len(b.Items))
	for i := range b.Items {
		it := &b.Items[i]
		if it.Parked != nil {
			continue
		}
		window, loaded := s.opts.Windows.Window(it.Value.tenant)
		if !loaded {
			return stream.Fail("windows", errWindowsNotLoaded)
		}
		own := schemas.Claim{Partition: it.Msg.Partition, Offset: it.Msg.Offset,
			PayloadHash: fingerprint(it.Value.payloadHash), ReceivedAt: it.Value.received}
		if _, err := encodeClaim(own); err != nil { // e.g. a receive time before 1970: it cannot be claimed
			b.Park(i, notAnEvent(err))
			continue
		}
		reqs = append(reqs, ClaimRequest{Tenant: it.Value.tenant, ID: it.Value.id, Retention: window + s.opts.FutureSkew, Claim: own})
		reqIdx = append(reqIdx, i)
	}
	held, err := s.claim(ctx, reqs)
	if err != nil {
		return err
	}
	var accepted, duplicates int
	for j, i := range reqIdx {
		m, own := &b.Items[i].Msg, reqs[j].Claim
		first := held[j]
		if first.Partition == own.Partition && first.Offset == own.Offset {
			// This record holds the claim (now, or from before a redelivery).
			// It names its usage.raw position, which every copy of it shares
			// (a batch handled again passes it on again, at a new offset):
			// the rater recognises the record by it.
			b.Emit(i, stream.Message{Topic: schemas.TopicAccepted, Key: m.Key, Value: m.Value, Time: m.Time,
				Headers: schemas.RawPositionHeaders(make([]kafka.Header, 0, 2), m.Partition, m.Offset)})
			accepted++
			continue
		}
		ev := b.Items[i].Value.ev
		if ev == nil {
			if ev, err = decodeEvent(m.Value); err != nil {
				// Its headers claimed it, its body is not an event: park it
				// (the claim stays; a repeat of it is a duplicate).
				b.Park(i, notAnEvent(err))
				continue
			}
			if !ev.ReceivedAt.IsZero() { // the exact receive time, not the Kafka time's milliseconds
				own.ReceivedAt = ev.ReceivedAt
			}
		}
		// Self and First carry fingerprints computed the same way; First's
		// receive time is the claim's, to the second.
		dup := schemas.Duplicate{Event: *ev, Self: own, First: first,
			PayloadDiffers: first.PayloadHash != own.PayloadHash, DetectedAt: b.Now}
		value, err := json.Marshal(&dup)
		if err != nil {
			return fmt.Errorf("encode duplicate: %w", err)
		}
		b.Emit(i, stream.Message{Topic: schemas.TopicDuplicates, Key: m.Key, Value: value, Time: m.Time})
		duplicates++
	}
	b.Count("accepted", accepted)
	b.Count("duplicate", duplicates)
	if bad := b.Parked(); bad > 0 {
		b.Count("malformed", bad)
	}
	return nil
}

// decodeEvent decodes a usage.raw record's event; one without a tenant or
// id is not an event.
func decodeEvent(value []byte) (*schemas.UsageEvent, error) {
	var ev schemas.UsageEvent
	if err := schemas.UnmarshalEvent(value, &ev); err != nil {
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
		err = fmt.Errorf("dedupe: %w", err)
		if ctx.Err() == nil { // not a shutdown
			s.health.failed(s.now())
			err = stream.Fail("redis", err)
		}
		return nil, err
	}
	s.health.ok(time.Since(start))
	return held, nil
}
