package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Group supervises the long-running components of a process (consumers,
// pollers, emitters) and holds the readiness checks of its dependencies.
// Run starts every component; the first one that fails is logged, counted
// in kakin_component_failures_total and stops the others. /readyz answers
// from Ready.
type Group struct {
	log        *slog.Logger
	failures   *prometheus.CounterVec
	components []component
	checks     []check

	failOnce sync.Once
	failed   chan struct{} // closed at the first failure
	err      error         // the first failure, set before failed is closed
}

// component is one long-running part of a process. run works until its
// context ends and then returns nil; an error stops the whole group.
type component struct {
	name string // metric label and log attribute
	run  func(ctx context.Context) error
}

// check is one readiness dependency.
type check struct {
	name string
	fn   func(ctx context.Context) error
}

// NewGroup returns an empty group whose failures are counted in reg.
func NewGroup(log *slog.Logger, reg prometheus.Registerer) *Group {
	g := &Group{log: log, failed: make(chan struct{}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_component_failures_total",
			Help: "Components (consumers, pollers, emitters) that failed, by component; a failure stops the process."}, []string{"component"})}
	reg.MustRegister(g.failures)
	return g
}

// Go adds run as the supervised component name; it starts with Run.
func (g *Group) Go(name string, run func(ctx context.Context) error) {
	g.components = append(g.components, component{name: name, run: run})
}

// Check adds a readiness check: /readyz answers 503 while fn fails.
func (g *Group) Check(name string, fn func(ctx context.Context) error) {
	g.checks = append(g.checks, check{name: name, fn: fn})
}

// Failed is closed when a component fails.
func (g *Group) Failed() <-chan struct{} { return g.failed }

// Err is the first failure, once Failed is closed.
func (g *Group) Err() error {
	select {
	case <-g.failed:
		return g.err
	default:
		return nil
	}
}

// Run runs every component until ctx ends or one fails, stops the others
// and returns once all have returned: the first failure, or nil.
func (g *Group) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range g.components {
		g.failures.WithLabelValues(c.name) // at 0 from the start, so increase() sees the first failure
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(ctx)
			switch {
			case err != nil:
				g.failures.WithLabelValues(c.name).Inc()
				g.log.Error("component failed", "component", c.name, "err", err)
				g.failOnce.Do(func() {
					g.err = fmt.Errorf("%s: %w", c.name, err)
					close(g.failed)
				})
				cancel()
			case ctx.Err() == nil:
				g.log.Warn("component stopped before the process", "component", c.name)
			}
		}()
	}
	wg.Wait()
	return g.Err()
}

// Ready runs every check and reports each one's answer ("ok" or its
// error) and whether all passed.
func (g *Group) Ready(ctx context.Context) (map[string]string, bool) {
	status, ok := map[string]string{}, true
	for _, c := range g.checks {
		if err := c.fn(ctx); err != nil {
			status[c.name] = err.Error()
			ok = false
		} else {
			status[c.name] = "ok"
		}
	}
	return status, ok
}
