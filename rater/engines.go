package rater

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/prometheus/client_golang/prometheus"
)

// Catalogues is where the rater reads each tenant's catalogue and contracts:
// the admin store's replica, kept current by polling its change feed.
type Catalogues interface {
	Tenants() []string
	// Version grows whenever anything of the tenant's changes; 0 is a
	// tenant with nothing stored.
	Version(tenant string) uint64
	Catalogue(tenant string) *catalog.Catalogue
	// Subscribe returns a channel that receives after every change, and a
	// function to stop receiving.
	Subscribe() (<-chan struct{}, func())
}

// Engines holds one compiled pricing engine per tenant and recompiles a
// tenant's when its catalogue changes. Readers never wait for a compile:
// they see the previous engine until the new one is ready.
type Engines struct {
	src     Catalogues
	log     *slog.Logger
	engines atomic.Pointer[map[string]*compiled]
	mu      sync.Mutex // serialises refreshes

	compiles *prometheus.CounterVec
	seconds  prometheus.Histogram
}

type compiled struct {
	version uint64
	engine  *pricing.Engine
}

// NewEngines returns an engine set over src; Run keeps it current.
func NewEngines(src Catalogues, log *slog.Logger, reg prometheus.Registerer) *Engines {
	e := &Engines{src: src, log: log,
		compiles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_rater_catalogue_compiles_total",
			Help: "Catalogue compiles by the rater, by outcome (ok, invalid)."}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kakin_rater_catalogue_compile_seconds",
			Help: "Time to compile one tenant's catalogue and contracts.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	reg.MustRegister(e.compiles, e.seconds)
	empty := map[string]*compiled{}
	e.engines.Store(&empty)
	return e
}

// Engine returns the tenant's current engine, or nil when the tenant has no
// price plan in the store (it is then priced by the price list file).
func (e *Engines) Engine(tenant string) *pricing.Engine {
	if c := (*e.engines.Load())[tenant]; c != nil {
		return c.engine
	}
	return nil
}

// Refresh recompiles every tenant whose version changed. A catalogue that
// does not compile keeps the tenant's previous engine and is logged and
// counted; the admin API validates writes, so this means a combination of
// versions the validation let through.
func (e *Engines) Refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := *e.engines.Load()
	next := make(map[string]*compiled, len(cur))
	for _, t := range e.src.Tenants() {
		v := e.src.Version(t)
		if c := cur[t]; c != nil && c.version == v {
			next[t] = c
			continue
		}
		if v == 0 {
			continue
		}
		cat := e.src.Catalogue(t)
		if cat == nil || len(cat.Plans) == 0 {
			continue // nothing to price with yet: the price list still applies
		}
		start := time.Now()
		eng, err := pricing.Compile(cat)
		e.seconds.Observe(time.Since(start).Seconds())
		if err != nil {
			e.compiles.WithLabelValues("invalid").Inc()
			e.log.Error("rater: catalogue does not compile; keeping the previous one", "tenant", t, "version", v, "err", err)
			if c := cur[t]; c != nil {
				next[t] = c
			}
			continue
		}
		e.compiles.WithLabelValues("ok").Inc()
		next[t] = &compiled{version: v, engine: eng}
	}
	e.engines.Store(&next)
}

// Run refreshes at once and then after every change the source announces,
// until ctx ends.
func (e *Engines) Run(ctx context.Context) error {
	changes, stop := e.src.Subscribe()
	defer stop()
	e.Refresh()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
			e.Refresh()
		}
	}
}
