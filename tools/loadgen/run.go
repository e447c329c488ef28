// Package loadgen posts realistic usage to a Kakin ingest endpoint at a
// target rate, measures accepted events per second and ingest-to-queryable
// latency, and checks at the end that ClickHouse holds exactly the totals the
// real rater gives for what was sent.
//
// A run has a unique id that prefixes every customer name and event id, so
// runs never collide and the check reads only its own lines. The traffic is
// many customers with a skew, four elements with integer and decimal
// quantities, times spread over the current month and a set share of
// re-sent duplicates. Money is decimal.Decimal throughout.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/pricing"
)

// Config is one load run.
type Config struct {
	URL            string  // ingest base URL; bodies go to URL + "/v1/usage"
	Tenant         string  // the tenant the events belong to (and the Kakin-Tenant header without Token)
	Token          string  // access token sent as "Authorization: Bearer"; "" = development header
	Events         int     // unique events
	Rate           float64 // target records per second; 0 = as fast as possible
	Batch          int     // records per request
	Concurrency    int     // requests in flight
	Customers      int
	DuplicateShare float64
	Seed           uint64        // 0 = random
	RunID          string        // "" = time-based plus random
	Timeout        time.Duration // wait for ClickHouse to hold the totals after sending

	PriceList *pricelist.List
	// Engine, when set, prices the expected totals instead of PriceList:
	// the tenant's compiled catalogue (a catalogue-priced tenant, graduated
	// tiers with running state; TieredCatalogue).
	Engine     *pricing.Engine
	Store      Store
	HTTPClient *http.Client // nil = NewHTTPClient(Concurrency)
	Log        *slog.Logger // nil = discard

	ProbeInterval  time.Duration // one probe event per interval while sending (default 100ms)
	PollInterval   time.Duration // probe visibility poll (default 50ms)
	VerifyInterval time.Duration // totals poll after sending (default 250ms)
	MinProbes      int           // probes sent even if sending is quicker (default 3)
	ProgressEvery  time.Duration // progress log interval (default 2s)

	sleep func(ctx context.Context, d time.Duration) error // tests
}

func (c *Config) setDefaults() error {
	switch {
	case c.URL == "":
		return errors.New("no ingest URL")
	case c.Concurrency < 1:
		return errors.New("concurrency must be at least 1")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Timeout <= 0:
		return errors.New("timeout must be positive")
	case c.Store == nil:
		return errors.New("no store to verify against")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ProbeInterval, 100*time.Millisecond)
	def(&c.PollInterval, 50*time.Millisecond)
	def(&c.VerifyInterval, 250*time.Millisecond)
	def(&c.ProgressEvery, 2*time.Second)
	if c.MinProbes <= 0 {
		c.MinProbes = 3
	}
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient(c.Concurrency)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	return nil
}

// NewRunID returns a run id that sorts by time and is unique across runs:
// "lg" + UTC time to the second + 8 random hex digits.
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("lg%s-%08x", now.UTC().Format("20060102t150405"), binary.BigEndian.Uint32(b[:]))
}

// Result is the report of a run.
type Result struct {
	RunID          string  `json:"run_id"`
	URL            string  `json:"url"`
	Tenant         string  `json:"tenant"`
	Seed           uint64  `json:"seed"`
	UniqueEvents   int     `json:"unique_events"`
	DuplicatesSent int     `json:"duplicates_sent"`
	Customers      int     `json:"customers"`
	Batch          int     `json:"batch"`
	Concurrency    int     `json:"concurrency"`
	TargetRate     float64 `json:"target_rate"` // 0 = unlimited

	Requests          int      `json:"requests"`
	Accepted          int      `json:"accepted"` // load records (unique + duplicates) answered accepted
	Rejected          int      `json:"rejected"` // must be 0
	Rejections        []string `json:"rejections,omitempty"`
	Retries503        int      `json:"retries_503"`   // batches and probes
	RetriesError      int      `json:"retries_error"` // batches and probes
	SendSeconds       float64  `json:"send_seconds"`
	AcceptedPerSecond float64  `json:"accepted_per_second"`
	RequestLatency    Latency  `json:"request_latency"` // batch POST round trips

	Probes            int     `json:"probes"`
	ProbesUnseen      int     `json:"probes_unseen"`
	IngestToQueryable Latency `json:"ingest_to_queryable"`
	PollIntervalMs    float64 `json:"poll_interval_ms"` // resolution of ingest_to_queryable

	Verification Verification `json:"verification"`
}

// Run sends the load, measures it and verifies the totals. It returns the
// result so far with any error; a nil error means the totals are exact.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Log
	now := clock.Now()
	if cfg.RunID == "" {
		cfg.RunID = NewRunID(now)
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Seed = binary.BigEndian.Uint64(b[:]) | 1
	}
	from, to := EventWindow(now)
	gen, err := NewGenerator(Options{RunID: cfg.RunID, Tenant: cfg.Tenant, Events: cfg.Events, Batch: cfg.Batch,
		Customers: cfg.Customers, DuplicateShare: cfg.DuplicateShare, Seed: cfg.Seed, From: from, To: to,
		Engine: cfg.Engine}, cfg.PriceList)
	if err != nil {
		return nil, err
	}
	res := &Result{RunID: cfg.RunID, URL: cfg.URL, Tenant: cfg.Tenant, Seed: cfg.Seed, UniqueEvents: cfg.Events,
		Customers: cfg.Customers, Batch: cfg.Batch, Concurrency: cfg.Concurrency, TargetRate: cfg.Rate,
		PollIntervalMs: ms(cfg.PollInterval)}
	p := &poster{client: cfg.HTTPClient, url: strings.TrimRight(cfg.URL, "/") + "/v1/usage", tenant: cfg.Tenant, token: cfg.Token,
		maxAttempts: 20, backoff: 200 * time.Millisecond, maxBackoff: 5 * time.Second, sleep: cfg.sleep}
	r := &runner{cfg: cfg, gen: gen, post: p, log: log, probes: newProbeSet()}
	log.Info("loadgen starting", "run", cfg.RunID, "url", cfg.URL, "tenant", cfg.Tenant, "events", cfg.Events,
		"duplicates", gen.DuplicateTarget(), "customers", cfg.Customers, "batch", cfg.Batch,
		"concurrency", cfg.Concurrency, "rate", cfg.Rate, "seed", cfg.Seed)

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.fail = func(err error) { cancel(err) }

	// Probe visibility poller: runs through sending and verification.
	pollCtx, stopPoll := context.WithCancel(runCtx)
	defer stopPoll()
	probesDone := make(chan struct{})
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); r.pollProbes(pollCtx, probesDone) }()

	sendDone := make(chan struct{})
	go func() { defer close(probesDone); r.sendProbes(runCtx, sendDone) }()

	sendStart := time.Now()
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); r.progress(runCtx, sendDone, sendStart) }()
	r.send(runCtx)
	sendEnd := time.Now()
	close(sendDone)
	<-progressDone
	<-probesDone

	r.stats.fill(res)
	res.DuplicatesSent = int(gen.Expected().Duplicates)
	if secs := sendEnd.Sub(sendStart).Seconds(); secs > 0 {
		res.SendSeconds = round3(secs)
		res.AcceptedPerSecond = round3(float64(res.Accepted) / secs)
	}
	res.Probes = r.probes.count()
	if err := context.Cause(runCtx); err != nil {
		stopPoll()
		<-pollDone
		return res, fmt.Errorf("sending stopped: %w", err)
	}
	log.Info("sending done", "records", res.Accepted+res.Rejected, "requests", res.Requests,
		"seconds", round3(res.SendSeconds), "accepted_per_s", int(res.AcceptedPerSecond))
	if res.Rejected > 0 {
		stopPoll()
		<-pollDone
		return res, fmt.Errorf("%d records were rejected, so the totals cannot match (first: %s)",
			res.Rejected, strings.Join(res.Rejections, " | "))
	}

	exp := gen.Expected()
	atLeast := res.Retries503+res.RetriesError > 0 || r.probes.retried()
	v, verr := verify(runCtx, cfg.Store, cfg.Tenant, cfg.RunID, exp, atLeast, sendEnd, cfg.Timeout, cfg.VerifyInterval, log)
	res.Verification = v

	// Let the poller see the last probes; they are in the totals, so once
	// the totals are exact every probe is queryable.
	select {
	case <-pollDone:
	case <-time.After(2*cfg.PollInterval + time.Second):
	}
	stopPoll()
	<-pollDone
	lat, unseen := r.probes.latencies()
	res.IngestToQueryable = Summarize(lat)
	res.ProbesUnseen = unseen
	if verr != nil {
		return res, verr
	}
	if !v.Exact {
		return res, errors.New(v.Problem())
	}
	return res, nil
}

// EventWindow is the range event times are spread over: the current month
// (UTC) up to now, or the last hour when the month is younger than that.
func EventWindow(now time.Time) (from, to time.Time) {
	to = now.UTC().Truncate(time.Second)
	from = time.Date(to.Year(), to.Month(), 1, 0, 0, 0, 0, time.UTC)
	if to.Sub(from) < time.Hour {
		from = to.Add(-time.Hour)
	}
	return from, to
}

type runner struct {
	cfg    Config
	gen    *Generator
	post   *poster
	log    *slog.Logger
	fail   func(error)
	stats  sendStats
	probes *probeSet
}

// sendStats accumulates the outcome of the load requests.
type sendStats struct {
	mu         sync.Mutex
	requests   int
	records    int
	accepted   int
	rejected   int
	retries503 int
	retriesErr int
	rejections []string
	latencies  []time.Duration
}

func (s *sendStats) add(pr postResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.accepted += pr.accepted
	s.rejected += pr.rejected
	s.records += pr.accepted + pr.rejected
	s.retries503 += pr.retries503
	s.retriesErr += pr.retriesOther
	for _, r := range pr.rejections {
		if len(s.rejections) < 5 {
			s.rejections = append(s.rejections, r)
		}
	}
	s.latencies = append(s.latencies, pr.elapsed)
}

func (s *sendStats) addRetries(pr postResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retries503 += pr.retries503
	s.retriesErr += pr.retriesOther
}

func (s *sendStats) fill(res *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res.Requests, res.Accepted, res.Rejected = s.requests, s.accepted, s.rejected
	res.Retries503, res.RetriesError, res.Rejections = s.retries503, s.retriesErr, s.rejections
	res.RequestLatency = Summarize(s.latencies)
}

// bytesPerRecord sizes a body buffer: a record line is ~130 bytes.
const bytesPerRecord = 160

// send paces batches from the generator to Concurrency workers. With a rate,
// batch k leaves when the records before it are due; a sender that falls
// more than a second behind does not burst to catch up. It stops when the
// generator is exhausted or ctx ends.
func (r *runner) send(ctx context.Context) {
	// Each body is a fresh buffer: the transport may still hold a body it
	// has been answered for, so bodies are never reused.
	jobs := make(chan Batch, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for b := range jobs {
				if ctx.Err() != nil {
					continue
				}
				pr, err := r.post.post(ctx, b.Body)
				if err != nil {
					r.stats.addRetries(pr)
					r.fail(err)
					continue
				}
				r.stats.add(pr)
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)
	const maxLag = time.Second
	start := time.Now()
	sent := 0
	for !r.gen.Done() {
		if r.cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / r.cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if sleepCtx(ctx, wait) != nil {
					return
				}
			} else if -wait > maxLag {
				start = start.Add(-wait - maxLag)
			}
		}
		b, err := r.gen.Next(make([]byte, 0, r.cfg.Batch*bytesPerRecord))
		if err != nil {
			r.fail(err)
			return
		}
		if b.Records() == 0 {
			continue
		}
		select {
		case jobs <- b:
		case <-ctx.Done():
			return
		}
		sent += b.Records()
	}
}

func (r *runner) progress(ctx context.Context, sendDone <-chan struct{}, start time.Time) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sendDone:
			return
		case <-t.C:
			r.stats.mu.Lock()
			acc, reqs, retries := r.stats.accepted, r.stats.requests, r.stats.retries503+r.stats.retriesErr
			r.stats.mu.Unlock()
			el := time.Since(start).Seconds()
			r.log.Info("sending", "accepted", acc, "requests", reqs, "retries", retries,
				"accepted_per_s", int(float64(acc)/el), "probes", r.probes.count())
		}
	}
}

// round3 rounds a float report value (seconds, rates) to 3 decimals.
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
