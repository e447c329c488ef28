// Package run is the billing run and the period close: it recomputes every
// basic contract's period from the stored usage records with the
// catalogue (package billing, the stream's pricing engine), writes draft
// receivables with deterministic ids, reconciles them with the streamed
// charges, books what changed in closed periods as adjustments, and closes
// (finalise, number, freeze) and reopens periods. The I/O it needs is the
// interfaces below and billingdb.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/redislock"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
)

// Records reads stored usage (usagedb.Records).
type Records interface {
	EachCustomer(ctx context.Context, tenant string, from, to, receivedBefore time.Time, fn func(customer string, evs []schemas.UsageEvent) error) error
	CustomerPeriodRecords(ctx context.Context, tenant, customer string, from, to, receivedBefore time.Time) ([]schemas.UsageEvent, error)
	EachStreamTotal(ctx context.Context, tenant, period string, fn func(usagedb.StreamTotal) error) error
}

// Catalogues gives a tenant's current catalogue with its contracts
// (catalogstore.Replica).
type Catalogues interface {
	Catalogue(tenant string) *catalog.Catalogue
}

// Periods keeps the closed-period markers (corrections.Periods): corrections
// of a closed period are refused there.
type Periods interface {
	Set(ctx context.Context, tenant, period string, closed bool, actor string) error
	Closed(ctx context.Context, tenant string) (map[string]bool, error)
}

// DefaultMaxLines is the default limit of a tenant's receivable detail lines
// (000 §3(4): 1,000,000).
const DefaultMaxLines = 1_000_000

// MaxAdjustedPeriods bounds how many consecutive closed periods before a
// run's period it books adjustments for.
const MaxAdjustedPeriods = 3

// Options configure a Service.
type Options struct {
	Store      *billingdb.Store
	Records    Records
	Catalogues Catalogues
	Periods    Periods
	Redis      redis.UniversalClient // the tenant's billing lock
	Now        func() time.Time      // business clock; default clock.Now
	// MaxLines returns a tenant's detail-line limit; nil: DefaultMaxLines.
	MaxLines func(ctx context.Context, tenant string) (uint64, error)
	Rates    billing.TaxRates
	// Members returns a customer group's members (a run of a group); nil: groups unknown.
	Members func(tenant, group string) ([]string, bool)
	// Watermark, when set, is waited for by every billing job and close
	// after it pinned its ingest watermark and before it computes: the
	// pipeline's stages have committed every record of their topics as of
	// then. Nil: the run computes from what is stored (tests, a CLI run
	// told not to wait).
	Watermark  *Watermark
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Service runs, closes and reopens billing periods.
type Service struct {
	o       Options
	diffs   *prometheus.CounterVec
	written *prometheus.CounterVec
}

// New returns the service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{o: o,
		diffs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_billing_reconciliation_keys_total",
			Help: "Charge keys compared by billing runs, by outcome (match, differ, only_in_stream, only_in_batch)."}, []string{"outcome"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_billing_receivables_total",
			Help: "Receivables handled by billing runs and closes, by outcome (written, unchanged, finalised, frozen)."}, []string{"outcome"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.diffs, s.written} {
			if err := o.Registerer.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					panic(err)
				}
			}
		}
	}
	return s
}

// Errors a caller answers as a client error.
var (
	ErrClosed      = errors.New("the period is closed")
	ErrNotClosed   = errors.New("the period is not closed")
	ErrNotLatest   = errors.New("only the latest closed period can be reopened")
	ErrNoCatalogue = errors.New("the tenant has no basic contracts to bill")
	ErrLimit       = errors.New("the receivable detail-line limit would be exceeded")
	ErrNoGroup     = errors.New("no such customer group")
)

// Request is what a run computes.
type Request struct {
	Tenant   string
	RunID    string // the job id
	Period   string // YYYY-MM
	Customer string // empty: every customer
	// Group, when set, limits the run to the group's members.
	Group string
	Actor string
	// Watermark is the ingest watermark: only records received before it
	// count. A resumed run passes the one it pinned first.
	Watermark time.Time

	// A preview computes (basic: only that basic contract's) drafts exactly
	// as a run would and writes nothing; tn, when set, is the compiled
	// catalogue to use.
	preview bool
	basic   string
	tn      *billing.Tenant
}

// Result is what a run did.
type Result struct {
	Receivables uint64
	Unchanged   uint64
	Frozen      uint64 // final or voided receivables left as they are
	Lines       uint64
	Differences uint64
	PeriodEnd   time.Time // the latest end instant of the period over the basic contracts

	drafts []*billing.Receivable // a preview's
}

// writeChunkLines bounds the detail lines a run writes (and holds) at a
// time.
const writeChunkLines = 20_000

// lockTTL is the billing lock's lease; the holder renews it every third.
const lockTTL = time.Minute

// hold takes the tenant's billing lock (runs, closes, reopens and deletes
// of one tenant are serialised) and renews it in the background until
// release; if a renewal fails (the lease was lost), the returned context is
// cancelled so the holder stops before writing anything more.
func (s *Service) hold(ctx context.Context, tenant, owner string) (context.Context, func(), error) {
	l, err := redislock.Acquire(ctx, s.o.Redis, "billing:lock:"+tenant, owner, lockTTL, 2*time.Minute)
	if err != nil {
		return nil, nil, fmt.Errorf("billing lock of %s: %w", tenant, err)
	}
	held, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
				if err := l.Renew(held); err != nil {
					s.o.Log.Warn("billing: lock lost; stopping", "tenant", tenant, "err", err)
					cancel()
					return
				}
			}
		}
	}()
	release := func() {
		cancel()
		<-done
		_ = l.Release(context.WithoutCancel(ctx))
	}
	return held, release, nil
}

// Run recomputes a period's draft receivables (refusing a closed period).
func (s *Service) Run(ctx context.Context, req Request) (Result, error) {
	closed, err := s.o.Periods.Closed(ctx, req.Tenant)
	if err != nil {
		return Result{}, err
	}
	if closed[req.Period] {
		return Result{}, fmt.Errorf("billing run of %s: %w (reopen it first)", req.Period, ErrClosed)
	}
	ctx, release, err := s.hold(ctx, req.Tenant, req.RunID)
	if err != nil {
		return Result{}, err
	}
	defer release()
	return s.compute(ctx, req, closed)
}

// window is the time range whose usage can fall into the billing periods
// from..to (the months before and of them, with a day's margin for time
// zones). For weekly and daily periods, whose Month is the month of their
// last day, that is a superset: a week starts at most 6 days earlier.
func window(from, to pricing.PeriodID) (time.Time, time.Time) {
	return time.Date(from.Year(), from.Month()-1, 1, 0, 0, 0, 0, time.UTC).Add(-26 * time.Hour),
		time.Date(to.Year(), to.Month()+1, 1, 0, 0, 0, 0, time.UTC).Add(26 * time.Hour)
}

// adjusted returns the closed periods a run of p books adjustments for: the
// consecutive closed periods right before p (at most MaxAdjustedPeriods),
// newest first; periods of p's length (months, weeks or days).
func adjusted(p pricing.PeriodID, closed map[string]bool) []pricing.PeriodID {
	var out []pricing.PeriodID
	for q := p.Prev(); len(out) < MaxAdjustedPeriods && closed[q.String()]; q = q.Prev() {
		out = append(out, q)
	}
	return out
}

type billedKey struct {
	basic, contract, fee, item, rate string
	cat                              catalog.TaxCategory
	incl                             bool
}

// billed sums, per receivable and charge, what the tenant's final
// receivables billed for closed period q: q's own charge, discount and
// adjustment lines, and the adjustments for q booked in the closed periods
// after it up to before.
func (s *Service) billed(ctx context.Context, tenant string, q, before pricing.PeriodID) (map[billedKey]decimal.Decimal, error) {
	out := map[billedKey]decimal.Decimal{}
	for p := q; p < before; p = p.Next() {
		recs, err := s.o.Store.Period(ctx, tenant, p.String())
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Status != billing.StatusFinal {
				continue
			}
			var after *billingdb.LineKey
			for {
				ls, err := s.o.Store.Lines(ctx, tenant, r.ID, after, 10_000)
				if err != nil {
					return nil, err
				}
				for _, l := range ls {
					// Tax and rounding lines are the receivable's, not a charge's: a
					// recomputation never produces them.
					if l.Kind == billing.KindTax || l.Kind == billing.KindRounding || l.ChargePeriod != q.String() {
						continue
					}
					k := billedKey{r.BasicContract, l.Contract, l.Fee, l.Item, l.Rate, l.TaxCategory, l.TaxInclusive}
					out[k] = out[k].Add(l.Amount)
				}
				if len(ls) < 10_000 {
					break
				}
				last := ls[len(ls)-1]
				after = &billingdb.LineKey{Seq: uint32(last.Seq), ID: last.ID}
			}
		}
	}
	return out, nil
}

// compute is the run: read, recompute, reconcile, write drafts.
func (s *Service) compute(ctx context.Context, req Request, closed map[string]bool) (Result, error) {
	var res Result
	pid, err := pricing.ParsePeriod(req.Period)
	if err != nil {
		return res, err
	}
	cat := s.o.Catalogues.Catalogue(req.Tenant)
	if cat == nil || len(cat.BasicContracts) == 0 {
		return res, ErrNoCatalogue
	}
	phase := newPhases()
	var members map[string]bool
	if req.Group != "" {
		var list []string
		ok := false
		if s.o.Members != nil {
			list, ok = s.o.Members(req.Tenant, req.Group)
		}
		if !ok {
			return res, fmt.Errorf("billing run: group %q: %w", req.Group, ErrNoGroup)
		}
		members = make(map[string]bool, len(list))
		for _, m := range list {
			members[m] = true
		}
	}
	tn := req.tn
	if tn == nil {
		engine, err := pricing.Compile(cat)
		if err != nil {
			return res, fmt.Errorf("compile the catalogue of %s: %w", req.Tenant, err)
		}
		tn = billing.NewTenant(req.Tenant, engine, cat)
	}
	adj := adjusted(pid, closed)
	first := pid
	if len(adj) > 0 {
		first = adj[len(adj)-1]
	}
	from, to := window(first, pid)
	phase.mark("compile")
	// One customer's records (a preview, a run of one customer), or every
	// customer's as a stream in customer order, read beside the
	// computation (recordsOf).
	var one []schemas.UsageEvent
	var stream *customerStream
	if req.Customer != "" {
		if one, err = s.o.Records.CustomerPeriodRecords(ctx, req.Tenant, req.Customer, from, to, req.Watermark); err != nil {
			return res, err
		}
	} else {
		stream = s.streamRecords(ctx, req.Tenant, from, to, req.Watermark)
		defer stream.stop()
	}
	billed := map[pricing.PeriodID]map[billedKey]decimal.Decimal{}
	for _, q := range adj {
		if billed[q], err = s.billed(ctx, req.Tenant, q, pid); err != nil {
			return res, err
		}
	}
	phase.mark("read billed")
	var stored []*billingdb.Stored
	if !req.preview {
		if stored, err = s.o.Store.Period(ctx, req.Tenant, req.Period); err != nil {
			return res, err
		}
	}
	prev := map[string]*billingdb.Stored{}
	for _, st := range stored {
		prev[st.ID] = st
	}

	phase.mark("read stored")
	basics := append([]catalog.BasicContract(nil), cat.BasicContracts...)
	sort.Slice(basics, func(i, j int) bool {
		if basics[i].Customer != basics[j].Customer {
			return basics[i].Customer < basics[j].Customer
		}
		return basics[i].ID < basics[j].ID
	})
	// The basic contracts are in customer order, as the records stream:
	// one customer's records and priced records are kept only while its
	// contracts are composed.
	var curCustomer string
	var curBatch *pricing.Batch
	batchOf := func(customer string) *pricing.Batch {
		if curBatch == nil || customer != curCustomer {
			evs := one
			if stream != nil {
				evs = stream.recordsOf(customer)
			}
			curCustomer, curBatch = customer, tn.RateCustomer(evs)
		}
		return curBatch
	}
	// The drafts to write go to a spill, one at a time, so that the run
	// holds one customer's receivables while it computes; they are written
	// after the detail-line limit was checked over all of them.
	// The comparison with the streamed lines is made customer by customer
	// too (reconciler).
	var sp *spill[billingdb.Write]
	var rec *reconciler
	if !req.preview {
		if sp, err = newSpill[billingdb.Write](); err != nil {
			return res, err
		}
		defer sp.close()
		if rec, err = s.newReconciler(ctx, req); err != nil {
			return res, err
		}
		defer rec.close()
	}
	changed := map[string]bool{} // drafts replacing an earlier revision
	// The batch's amounts per stream item of the customer being computed.
	var itemsCustomer string
	var items map[string]decimal.Decimal
	reconcileCustomer := func() error {
		if rec == nil || items == nil {
			return nil
		}
		err := rec.customer(itemsCustomer, items)
		items = nil
		return err
	}
	var newLines uint64
	for _, b := range basics {
		if req.Customer != "" && b.Customer != req.Customer || members != nil && !members[b.Customer] || req.basic != "" && b.ID != req.basic {
			continue
		}
		p, ok, err := tn.Period(b.ID, pid)
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		if end := p.End.AddDays(1).In(p.Location); end.After(res.PeriodEnd) {
			res.PeriodEnd = end.UTC()
		}
		if items == nil || b.Customer != itemsCustomer {
			if err := reconcileCustomer(); err != nil {
				return res, err
			}
			itemsCustomer, items = b.Customer, map[string]decimal.Decimal{}
		}
		batch := batchOf(b.Customer)
		charges, err := tn.Charges(b.ID, p, batch)
		if err != nil {
			return res, fmt.Errorf("charges of %s: %w", b.ID, err)
		}
		for i := range charges {
			k := billing.StreamItem(&charges[i])
			items[k] = items[k].Add(charges[i].Amount)
		}
		for _, q := range adj {
			a, err := s.adjustments(tn, b, q, batch, billed[q])
			if err != nil {
				return res, err
			}
			charges = append(charges, a...)
		}
		if len(charges) == 0 && prev[billing.ReceivableID(req.Tenant, b.ID, req.Period)] == nil {
			continue
		}
		r, err := billing.Compose(billing.Input{Tenant: req.Tenant, Customer: b.Customer, BasicContract: b.ID,
			Period: req.Period, Start: p.Start, End: p.End, TimeZone: b.TimeZone, Currency: b.Currency,
			Rounding: b.Rounding, Charges: charges, Rates: s.o.Rates})
		if err != nil {
			return res, err
		}
		if req.preview {
			res.drafts = append(res.drafts, r)
			continue
		}
		newLines += uint64(len(r.Lines))
		old := prev[r.ID]
		w := billingdb.Write{Stored: billingdb.Stored{Receivable: r, Status: billing.StatusDraft, ChangedBy: req.RunID, Revision: 1}}
		if old != nil {
			switch {
			case old.Status == billing.StatusFinal || old.Status == billing.StatusVoided:
				res.Frozen++
				newLines += uint64(old.LineCount) - uint64(len(r.Lines))
				continue
			case old.Hash == r.Hash:
				res.Unchanged++
				continue
			}
			w.Revision = old.Revision + 1
			w.NumberSeq, w.Number = old.NumberSeq, old.Number // a reopened period keeps its numbers
			if old.Status == billing.StatusDiscarded {
				w.VoidReason = ""
			}
			changed[r.ID] = true
		}
		if err := sp.add(&w); err != nil {
			return res, err
		}
	}

	if stream != nil {
		// Every record was read (or the run fails: a customer computed
		// without its records must not be written).
		if err := stream.finish(); err != nil {
			return res, err
		}
	}
	if rec != nil {
		if err := reconcileCustomer(); err != nil {
			return res, err
		}
		if err := rec.finish(); err != nil {
			return res, err
		}
	}
	phase.mark("compute")
	if req.preview {
		return res, nil
	}
	// The detail-line limit, checked before anything is written.
	max := uint64(DefaultMaxLines)
	if s.o.MaxLines != nil {
		if max, err = s.o.MaxLines(ctx, req.Tenant); err != nil {
			return res, err
		}
	}
	others, err := s.o.Store.CountLines(ctx, req.Tenant, req.Period)
	if err != nil {
		return res, err
	}
	if req.Customer != "" || members != nil {
		// Only some of the period's receivables are recomputed: count the rest.
		all, err := s.o.Store.CountLines(ctx, req.Tenant)
		if err != nil {
			return res, err
		}
		var mine uint64
		for _, st := range stored {
			if st.Customer == req.Customer || members[st.Customer] {
				mine += uint64(st.LineCount)
			}
		}
		others = all - min(all, mine)
	}
	if others+newLines > max {
		return res, fmt.Errorf("%w: the tenant would have %d receivable detail lines, its limit is %d (receivable_detail_lines)",
			ErrLimit, others+newLines, max)
	}

	phase.mark("limit")
	// Written in chunks of about writeChunkLines lines: each chunk's lines,
	// then its receivables' rows. A crash between chunks leaves the earlier
	// ones written; the resumed run finds them unchanged and writes the rest.
	rd, err := sp.reader()
	if err != nil {
		return res, err
	}
	for {
		ws, err := rd.next(writeChunkLines, writeLines)
		if err != nil {
			return res, err
		}
		if len(ws) == 0 {
			break
		}
		var ids []string
		for i := range ws {
			if changed[ws[i].ID] {
				ids = append(ids, ws[i].ID)
			}
		}
		gone, err := s.o.Store.LineIDs(ctx, req.Tenant, req.Period, ids)
		if err != nil {
			return res, err
		}
		for i := range ws {
			w := &ws[i]
			if ids := gone[w.ID]; len(ids) > 0 {
				keep := make(map[string]bool, len(w.Lines))
				for _, l := range w.Lines {
					keep[l.ID] = true
				}
				for _, id := range ids {
					if !keep[id] {
						w.Gone = append(w.Gone, id)
					}
				}
			}
			res.Lines += uint64(len(w.Lines))
		}
		if err := s.o.Store.WriteReceivables(ctx, ws); err != nil {
			return res, err
		}
		res.Receivables += uint64(len(ws))
	}
	phase.mark("write")
	s.written.WithLabelValues("written").Add(float64(res.Receivables))
	s.written.WithLabelValues("unchanged").Add(float64(res.Unchanged))

	// Reconciliation: the batch's figures against the streamed lines.
	if err := rec.write(ctx); err != nil {
		return res, err
	}
	res.Differences = rec.differences
	phase.mark("reconcile")
	s.o.Log.Info("billing run", append([]any{"tenant", req.Tenant, "period", req.Period, "receivables", res.Receivables, "lines", res.Lines}, phase.attrs()...)...)
	return res, nil
}

// adjustments books what changed in closed period q since it was billed:
// per charge, the recomputed amount minus what the final receivables billed
// for q, as signed adjustment lines carrying q as their charge period.
func (s *Service) adjustments(tn *billing.Tenant, b catalog.BasicContract, q pricing.PeriodID, batch *pricing.Batch,
	billed map[billedKey]decimal.Decimal) ([]billing.Charge, error) {
	p, ok, err := tn.Period(b.ID, q)
	if err != nil || !ok {
		return nil, err
	}
	charges, err := tn.Charges(b.ID, p, batch)
	if err != nil {
		return nil, err
	}
	now := map[billedKey]decimal.Decimal{}
	for _, c := range charges {
		cat := c.TaxCategory
		if cat == "" {
			cat = catalog.TaxStandard
		}
		k := billedKey{b.ID, c.Contract, c.Fee, c.Item, c.Rate, cat, c.TaxInclusive}
		now[k] = now[k].Add(c.Amount)
	}
	keys := map[billedKey]bool{}
	for k := range now {
		keys[k] = true
	}
	for k := range billed {
		if k.basic == b.ID {
			keys[k] = true
		}
	}
	var out []billing.Charge
	for k := range keys {
		was := billed[k]
		delta := now[k].Sub(was)
		if delta.IsZero() {
			continue
		}
		note := fmt.Sprintf("%s re-rated %s, billed %s", q, now[k], was)
		out = append(out, billing.Charge{Kind: billing.KindAdjustment, Contract: k.contract, Fee: k.fee, Item: k.item,
			Rate: k.rate, Quantity: decimal.Zero, UnitPrice: decimal.Zero, Amount: delta, Discount: decimal.Zero,
			ChargePeriod: q.String(), From: p.Start, To: p.End, TaxCategory: k.cat, TaxInclusive: k.incl, Note: note})
	}
	return out, nil
}

// phases times the steps of a run for its log line.
type phases struct {
	last  time.Time
	steps []any
}

func newPhases() *phases { return &phases{last: time.Now()} }

func (p *phases) mark(name string) {
	now := time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.steps = append(p.steps, name, now.Sub(p.last).Round(time.Millisecond).String()+fmt.Sprintf(" heap %dMB sys %dMB", ms.HeapAlloc>>20, ms.HeapSys>>20))
	p.last = now
}

func (p *phases) attrs() []any { return p.steps }
