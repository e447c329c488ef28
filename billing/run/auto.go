package run

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/zeebo/xxh3"
)

// DefaultGrace is how long after a basic contract's period ends its
// automatic billing run starts, unless the tenant says otherwise.
const DefaultGrace = 24 * time.Hour

// AutoOptions configure the automatic billing runs.
type AutoOptions struct {
	Jobs *jobs.Store
	Wake func() // the job runner's
	// Tenants lists the tenants to consider (catalogstore.Replica.Tenants).
	Tenants func() []string
	// Grace returns a tenant's grace time after a closing day; nil, or a
	// zero duration: DefaultGrace.
	Grace    func(ctx context.Context, tenant string) (time.Duration, error)
	Interval time.Duration // between two looks; default a minute
}

// Auto starts each tenant's billing run by itself a grace time after each
// basic contract's period ended: as a billing_run job on the jobs API with
// a deterministic id per (tenant, period) (AutoJobID), created under the
// tenant's billing lock only if absent — so two admin processes never run a
// period twice, and a period already run automatically is not run again.
// Closed periods are left alone. The business clock is the service's.
type Auto struct {
	s *Service
	o AutoOptions

	mu      sync.Mutex
	engines map[string]compiled // per tenant, while its catalogue is the same
}

type compiled struct {
	cat    *catalog.Catalogue
	engine *pricing.Engine
}

// NewAuto returns the automatic runs of s.
func NewAuto(s *Service, o AutoOptions) *Auto {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	return &Auto{s: s, o: o, engines: map[string]compiled{}}
}

// AutoJobID is the job id of a tenant's automatic run of period: "job_"
// and 26 base32 characters like any job id, from xxh3-128 of (tenant,
// period).
func AutoJobID(tenant, period string) string {
	h := xxh3.New()
	for _, f := range []string{"billing_run:auto", tenant, period} {
		_, _ = fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	sum := h.Sum128().Bytes()
	return "job_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
}

// Loop looks every Interval until ctx ends; a failed look is logged and
// retried at the next.
func (a *Auto) Loop(ctx context.Context) error {
	t := time.NewTicker(a.o.Interval)
	defer t.Stop()
	for {
		if _, err := a.Tick(ctx); err != nil && ctx.Err() == nil {
			a.s.o.Log.Warn("billing: automatic runs", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Due returns the periods of a tenant whose automatic run is due at now: for
// each basic contract with service contracts, the period before the one
// containing now − grace (that period ended at least grace ago; a month,
// week or day as the basic contract's billing_period says), unless closed.
// Sorted.
func (a *Auto) Due(ctx context.Context, tenant string, now time.Time) ([]string, error) {
	cat := a.s.o.Catalogues.Catalogue(tenant)
	if cat == nil || len(cat.BasicContracts) == 0 {
		return nil, nil
	}
	grace := DefaultGrace
	if a.o.Grace != nil {
		g, err := a.o.Grace(ctx, tenant)
		if err != nil {
			return nil, err
		}
		if g > 0 {
			grace = g
		}
	}
	engine, err := a.engine(tenant, cat)
	if err != nil {
		return nil, err
	}
	first := map[string]string{} // basic contract → its first service contract
	for _, k := range cat.ServiceContracts {
		if f, ok := first[k.Basic]; !ok || k.ID < f {
			first[k.Basic] = k.ID
		}
	}
	closed, err := a.s.o.Periods.Closed(ctx, tenant)
	if err != nil {
		return nil, err
	}
	due := map[string]bool{}
	for _, b := range cat.BasicContracts {
		k, ok := first[b.ID]
		if !ok {
			continue
		}
		p, err := engine.PeriodAt(k, now.Add(-grace))
		if err != nil {
			return nil, fmt.Errorf("the period of %s: %w", b.ID, err)
		}
		if prev := p.ID.Prev().String(); !closed[prev] {
			due[prev] = true
		}
	}
	out := make([]string, 0, len(due))
	for p := range due {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Tick creates the automatic runs due now that do not exist yet and returns
// them.
func (a *Auto) Tick(ctx context.Context) ([]jobs.Job, error) {
	now := a.s.o.Now().UTC()
	var created []jobs.Job
	var errs []error
	for _, tenant := range a.o.Tenants() {
		due, err := a.Due(ctx, tenant, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", tenant, err))
			continue
		}
		for _, period := range due {
			j, ok, err := a.create(ctx, tenant, period)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", tenant, period, err))
				continue
			}
			if ok {
				a.s.o.Log.Info("billing: automatic run", "tenant", tenant, "period", period, "job", j.ID)
				created = append(created, j)
			}
		}
	}
	if len(created) > 0 {
		a.o.Wake()
	}
	return created, errors.Join(errs...)
}

// create makes the tenant's automatic run of period unless it exists: the
// look and the creation are under the tenant's billing lock, so of two
// processes only one creates it.
func (a *Auto) create(ctx context.Context, tenant, period string) (jobs.Job, bool, error) {
	id := AutoJobID(tenant, period)
	if _, err := a.o.Jobs.Get(ctx, tenant, id); err == nil {
		return jobs.Job{}, false, nil
	} else if !errors.Is(err, jobs.ErrNotFound) {
		return jobs.Job{}, false, err
	}
	held, release, err := a.s.hold(ctx, tenant, "auto:"+period)
	if err != nil {
		return jobs.Job{}, false, err
	}
	defer release()
	if _, err := a.o.Jobs.Get(held, tenant, id); err == nil {
		return jobs.Job{}, false, nil
	} else if !errors.Is(err, jobs.ErrNotFound) {
		return jobs.Job{}, false, err
	}
	params, _ := json.Marshal(Params{Period: period})
	j, err := a.o.Jobs.Create(held, jobs.Job{Tenant: tenant, ID: id, Kind: Kind, Params: params, CreatedBy: "auto"})
	if err != nil {
		return jobs.Job{}, false, err
	}
	return j, true, nil
}

// engine compiles a tenant's catalogue once per catalogue the replica
// gives (a looks every minute; a large tenant's compilation is not free).
func (a *Auto) engine(tenant string, cat *catalog.Catalogue) (*pricing.Engine, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.engines[tenant]; ok && c.cat == cat {
		return c.engine, nil
	}
	e, err := pricing.Compile(cat)
	if err != nil {
		return nil, fmt.Errorf("compile the catalogue of %s: %w", tenant, err)
	}
	a.engines[tenant] = compiled{cat, e}
	return e, nil
}
