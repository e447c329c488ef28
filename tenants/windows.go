package tenants

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kakin-dev/kakin/internal/reload"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultWindowRefresh is how often Windows are reloaded: a changed window
// applies within it.
const DefaultWindowRefresh = 30 * time.Second

// WindowLister reads the tenants that have a window of their own
// (Store.DedupeWindows).
type WindowLister interface {
	DedupeWindows(ctx context.Context) (map[string]time.Duration, error)
}

// Windows is this process's copy of every tenant's duplicate-detection
// window (the tenants table's dedupe_window_seconds), reloaded in the
// background. Ingest refuses events older than their tenant's window; dedupe
// remembers each tenant's ids that long. It answers a tenant's window: its
// own, else the default.
type Windows struct {
	v        *reload.Value[map[string]time.Duration]
	def      time.Duration
	failures prometheus.Counter
}

// NewWindows returns windows read from store every refresh
// (DefaultWindowRefresh when 0), with def for tenants without a window of
// their own. reg may be nil.
func NewWindows(store WindowLister, def, refresh time.Duration, log *slog.Logger, reg prometheus.Registerer) *Windows {
	if refresh <= 0 {
		refresh = DefaultWindowRefresh
	}
	w := &Windows{def: def, v: reload.New("tenant dedupe windows", refresh, log, store.DedupeWindows)}
	w.v.WhileUnloaded = "ingest answers 503 and dedupe holds its batches"
	w.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_tenant_windows_refresh_failures_total",
		Help: "Failed reloads of the tenants' dedupe windows."})
	w.v.OnFail = w.failures.Inc
	if reg != nil {
		reg.MustRegister(w.failures,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kakin_tenant_windows_age_seconds",
				Help: "Age of this process's copy of the tenants' dedupe windows (0 until first loaded)."},
				func() float64 { return w.v.Age().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kakin_tenant_windows_stale",
				Help: "1 when the tenants' dedupe windows missed a reload or were never loaded."},
				func() float64 {
					if w.v.Stale() {
						return 1
					}
					return 0
				}))
	}
	return w
}

// Window returns tenant's window, and false until the windows were loaded.
func (w *Windows) Window(tenant string) (time.Duration, bool) {
	m, loaded := w.v.Get()
	if !loaded {
		return 0, false
	}
	if d, ok := m[tenant]; ok {
		return d, true
	}
	return w.def, true
}

// Refresh reloads now.
func (w *Windows) Refresh(ctx context.Context) error { return w.v.Refresh(ctx) }

// Run reloads every refresh interval until ctx ends; it returns nil.
func (w *Windows) Run(ctx context.Context) error {
	w.v.Run(ctx, nil)
	return nil
}

// Ready is a readiness check: it fails until the windows were loaded.
func (w *Windows) Ready(context.Context) error {
	if !w.v.Loaded() {
		return errors.New("tenant dedupe windows not loaded yet")
	}
	return nil
}
