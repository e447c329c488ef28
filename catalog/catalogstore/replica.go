package catalogstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPollInterval is how often a replica asks ClickHouse for changes.
const DefaultPollInterval = 250 * time.Millisecond

// ReplicaOptions configure a Replica.
type ReplicaOptions struct {
	// PollInterval between change polls; DefaultPollInterval when zero.
	PollInterval time.Duration
	// Tenants, when set, restricts the replica to these tenants (the CLI);
	// otherwise it holds every tenant.
	Tenants []string
	// WithoutPII leaves customers' sealed personal fields out (raters never
	// need them).
	WithoutPII bool
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Replica is an in-memory copy of the current state of every entity of
// every tenant (or of the configured ones), loaded from ClickHouse at start
// and kept current by polling the change feed (catalog_heads, catalog_log)
// every PollInterval. Searches, counts and the rater's catalogue are served
// from it. A process's own writes are applied to it as soon as they are
// committed. It is safe for concurrent use.
type Replica struct {
	conn    driver.Conn
	opts    ReplicaOptions
	log     *slog.Logger
	metrics *replicaMetrics

	mu      sync.RWMutex
	tenants map[string]*tenantState

	ready     chan struct{}
	readyOnce sync.Once

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}

	pollMu   sync.Mutex // one Poll at a time
	healthMu sync.Mutex
	lastPoll time.Time      // last successful poll (or load)
	lagging  map[string]int // tenant -> polls in a row whose head stayed ahead of the log
}

// tenantState is one tenant's entities.
type tenantState struct {
	mu     sync.RWMutex
	seq    uint64 // highest commit seq applied
	tables [numKinds]*table
	snap   atomic.Pointer[Snapshot]
}

func newTenantState() *tenantState {
	t := &tenantState{}
	for k := range specs {
		t.tables[k] = newTable(&specs[k])
	}
	return t
}

// NewReplica returns a replica reading conn. Call Run (or Load) before use.
func NewReplica(conn driver.Conn, opts ReplicaOptions) *Replica {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	return &Replica{conn: conn, opts: opts, log: opts.Log, metrics: newReplicaMetrics(opts.Registerer),
		tenants: map[string]*tenantState{}, ready: make(chan struct{}), subs: map[chan struct{}]struct{}{},
		lagging: map[string]int{}}
}

// Ready is closed once the initial load finished.
func (r *Replica) Ready() <-chan struct{} { return r.ready }

// WaitReady blocks until the initial load finished or ctx ends.
func (r *Replica) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run loads every entity (retrying until it succeeds), then polls for
// changes until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := r.Load(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		r.metrics.errors.Inc()
		r.log.Error("catalog replica: initial load failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		}
	}
	t := time.NewTicker(r.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.Poll(ctx); err != nil && ctx.Err() == nil {
			r.metrics.errors.Inc()
			r.log.Warn("catalog replica: poll failed", "err", err)
		}
	}
}

// Load reads the current state of every entity (catalog_current) into the
// replica, replacing what it held.
func (r *Replica) Load(ctx context.Context) error {
	start := time.Now()
	// A load allocates the whole replica at once; collecting less often
	// meanwhile roughly halves its time. The setting is the process's, and
	// restored when the load ends.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	where, args := "", []any(nil)
	if len(r.opts.Tenants) > 0 {
		where = ` AND tenant IN (?` + strings.Repeat(`, ?`, len(r.opts.Tenants)-1) + `)`
		for _, t := range r.opts.Tenants {
			args = append(args, t)
		}
	}

	// One stream per kind, a few at a time (ClickHouse and the driver's
	// column decoding work in parallel), decoders behind them, and this
	// goroutine filing the results.
	type decoded struct {
		tenant string
		kind   Kind
		rec    rec
		err    error
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	chunks := make(chan []row, workers*2)
	results := make(chan []decoded, workers*2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := newInterner()
			for chunk := range chunks {
				out := make([]decoded, len(chunk))
				for i := range chunk {
					k, rc, err := decode(&chunk[i], in)
					out[i] = decoded{tenant: chunk[i].tenant, kind: k, rec: rc, err: err}
				}
				results <- out
			}
		}()
	}
	var firstRow, scanned atomic.Int64
	scanErrs := make(chan error, len(Kinds))
	var scanners sync.WaitGroup
	sem := make(chan struct{}, 3)
	for _, k := range Kinds {
		scanners.Add(1)
		go func() {
			defer scanners.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			scanErrs <- r.stream(ctx, k, where, args, chunks, &firstRow, start)
		}()
	}
	go func() {
		scanners.Wait()
		scanned.Store(int64(time.Since(start)))
		close(chunks)
		wg.Wait()
		close(results)
	}()

	loaded := map[string]*tenantState{}
	var firstErr error
	n := 0
	for batch := range results {
		for _, d := range batch {
			if d.err != nil {
				if firstErr == nil {
					firstErr = d.err
				}
				continue
			}
			ts := loaded[d.tenant]
			if ts == nil {
				ts = newTenantState()
				loaded[d.tenant] = ts
			}
			tb := ts.tables[d.kind]
			tb.recs = append(tb.recs, d.rec)
			ts.seq = max(ts.seq, d.rec.seq)
			n++
		}
	}
	for range Kinds {
		if err := <-scanErrs; err != nil {
			return fmt.Errorf("catalog replica: load: %w", err)
		}
	}
	if firstErr != nil {
		return fmt.Errorf("catalog replica: load: %w", firstErr)
	}
	decodedAt := time.Since(start)
	// Order and index each table; tables are independent, so in parallel.
	var iw sync.WaitGroup
	isem := make(chan struct{}, workers)
	for _, ts := range loaded {
		for _, tb := range ts.tables {
			if len(tb.recs) == 0 {
				continue
			}
			iw.Add(1)
			isem <- struct{}{}
			go func() {
				defer func() { <-isem; iw.Done() }()
				tb.sortLoaded()
			}()
		}
	}
	iw.Wait()

	r.mu.Lock()
	r.tenants = loaded
	r.mu.Unlock()
	r.metrics.loadSeconds.Set(time.Since(start).Seconds())
	r.metrics.applied.Add(float64(n))
	r.log.Info("catalog replica loaded", "entities", n, "tenants", len(loaded), "duration", time.Since(start).Round(time.Millisecond),
		"first_row", time.Duration(firstRow.Load()).Round(time.Millisecond), "scanned", time.Duration(scanned.Load()).Round(time.Millisecond),
		"decoded", decodedAt.Round(time.Millisecond))
	r.healthMu.Lock()
	r.lastPoll = time.Now()
	r.healthMu.Unlock()
	r.readyOnce.Do(func() { close(r.ready) })
	r.notify()
	return nil
}

// stream reads the current rows of one kind into chunks.
func (r *Replica) stream(ctx context.Context, k Kind, where string, args []any, chunks chan<- []row, firstRow *atomic.Int64, start time.Time) error {
	rows, err := r.conn.Query(ctx, `SELECT `+selectColumns(!r.opts.WithoutPII)+` FROM catalog_current FINAL WHERE kind = ?`+where,
		append([]any{k.String()}, args...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	const chunkSize = 2048
	chunk := make([]row, 0, chunkSize)
	for rows.Next() {
		firstRow.CompareAndSwap(0, int64(time.Since(start)))
		chunk = append(chunk, row{})
		if err := rows.Scan(chunk[len(chunk)-1].scanTargets()...); err != nil {
			return err
		}
		if len(chunk) == chunkSize {
			select {
			case chunks <- chunk:
			case <-ctx.Done():
				return ctx.Err()
			}
			chunk = make([]row, 0, chunkSize)
		}
	}
	if len(chunk) > 0 {
		select {
		case chunks <- chunk:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return rows.Err()
}

// Poll applies every change committed since the last poll.
func (r *Replica) Poll(ctx context.Context) error {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	start := time.Now()
	heads, err := r.heads(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for tenant, head := range heads {
		if !r.wants(tenant) {
			continue
		}
		ts := r.state(tenant, true)
		ts.mu.RLock()
		have := ts.seq
		ts.mu.RUnlock()
		if head <= have {
			delete(r.lagging, tenant)
			continue
		}
		if err := r.fetch(ctx, tenant, ts, false); err != nil {
			errs = append(errs, err)
			continue
		}
		ts.mu.RLock()
		have = ts.seq
		ts.mu.RUnlock()
		if have >= head {
			delete(r.lagging, tenant)
			continue
		}
		// The head is ahead of what the log gave. Usually the log's view
		// is a moment behind; if it stays behind, read the table itself.
		r.lagging[tenant]++
		if r.lagging[tenant] >= 4 {
			r.log.Warn("catalog replica: change log behind the head; reading catalog_entities", "tenant", tenant, "have", have, "head", head)
			if err := r.fetch(ctx, tenant, ts, true); err != nil {
				errs = append(errs, err)
			}
			delete(r.lagging, tenant)
		}
	}
	r.metrics.pollSeconds.Observe(time.Since(start).Seconds())
	if len(errs) == 0 {
		r.metrics.lastPoll.SetToCurrentTime()
		r.healthMu.Lock()
		r.lastPoll = time.Now()
		r.healthMu.Unlock()
	}
	return errors.Join(errs...)
}

// Sync brings one tenant up to date with everything committed: the change
// log, then, if the tenant's head says more was committed, the table
// itself. Writers call it under the tenant's write lock; afterwards the
// replica holds exactly the committed state. It returns the tenant's seq.
func (r *Replica) Sync(ctx context.Context, tenant string) (uint64, error) {
	ts := r.state(tenant, true)
	if err := r.fetch(ctx, tenant, ts, false); err != nil {
		return 0, err
	}
	var head uint64
	if err := r.conn.QueryRow(ctx, `SELECT max(seq) FROM catalog_heads WHERE tenant = ?`, tenant).Scan(&head); err != nil {
		return 0, fmt.Errorf("catalog: read head: %w", err)
	}
	ts.mu.RLock()
	have := ts.seq
	ts.mu.RUnlock()
	if head > have {
		if err := r.fetch(ctx, tenant, ts, true); err != nil {
			return 0, err
		}
		ts.mu.RLock()
		have = ts.seq
		ts.mu.RUnlock()
	}
	return max(have, head), nil
}

// heads returns every tenant's highest committed seq.
func (r *Replica) heads(ctx context.Context) (map[string]uint64, error) {
	rows, err := r.conn.Query(ctx, `SELECT tenant, max(seq) FROM catalog_heads GROUP BY tenant`)
	if err != nil {
		return nil, fmt.Errorf("catalog replica: heads: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var t string
		var s uint64
		if err := rows.Scan(&t, &s); err != nil {
			return nil, err
		}
		out[t] = s
	}
	return out, rows.Err()
}

// fetch applies the tenant's revisions after its seq, found through the
// change log, or (direct) by scanning catalog_entities.
func (r *Replica) fetch(ctx context.Context, tenant string, ts *tenantState, direct bool) error {
	ts.mu.RLock()
	after := ts.seq
	ts.mu.RUnlock()
	var q string
	if direct {
		q = `SELECT ` + selectColumns(!r.opts.WithoutPII) + ` FROM catalog_entities WHERE tenant = ? AND seq > ? ORDER BY seq`
	} else {
		q = `SELECT ` + selectColumns(!r.opts.WithoutPII) + ` FROM catalog_entities
			WHERE (tenant, kind, id, revision) IN (SELECT tenant, kind, id, revision FROM catalog_log WHERE tenant = ? AND seq > ?)
			ORDER BY seq`
	}
	rows, err := r.conn.Query(ctx, q, tenant, after)
	if err != nil {
		return fmt.Errorf("catalog replica: changes of %s: %w", tenant, err)
	}
	defer rows.Close()
	var batch []row
	for rows.Next() {
		batch = append(batch, row{})
		if err := rows.Scan(batch[len(batch)-1].scanTargets()...); err != nil {
			return fmt.Errorf("catalog replica: changes of %s: %w", tenant, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog replica: changes of %s: %w", tenant, err)
	}
	if len(batch) == 0 {
		return nil
	}
	return r.applyRows(tenant, batch)
}

// applyRows decodes rows (in seq order) and applies them.
func (r *Replica) applyRows(tenant string, rows []row) error {
	type item struct {
		kind Kind
		rec  rec
	}
	items := make([]item, 0, len(rows))
	in := newInterner()
	for i := range rows {
		k, rc, err := decode(&rows[i], in)
		if err != nil {
			return fmt.Errorf("catalog replica: %w", err)
		}
		items = append(items, item{k, rc})
	}
	ts := r.state(tenant, true)
	changed := 0
	ts.mu.Lock()
	for _, it := range items {
		if ts.tables[it.kind].put(it.rec) {
			changed++
		}
		ts.seq = max(ts.seq, it.rec.seq)
	}
	if changed > 0 {
		ts.snap.Store(nil)
	}
	ts.mu.Unlock()
	if changed > 0 {
		r.metrics.applied.Add(float64(changed))
		r.notify()
	}
	return nil
}

// apply files a process's own committed revisions at once (read your
// writes).
func (r *Replica) apply(tenant string, recs []keyedRec) {
	ts := r.state(tenant, true)
	ts.mu.Lock()
	changed := 0
	for _, kr := range recs {
		if ts.tables[kr.kind].put(kr.rec) {
			changed++
		}
		ts.seq = max(ts.seq, kr.rec.seq)
	}
	if changed > 0 {
		ts.snap.Store(nil)
	}
	ts.mu.Unlock()
	if changed > 0 {
		r.metrics.applied.Add(float64(changed))
		r.notify()
	}
}

type keyedRec struct {
	kind Kind
	rec  rec
}

func (r *Replica) wants(tenant string) bool {
	return len(r.opts.Tenants) == 0 || slices.Contains(r.opts.Tenants, tenant)
}

// state returns the tenant's state, creating an empty one when create.
func (r *Replica) state(tenant string, create bool) *tenantState {
	r.mu.RLock()
	ts := r.tenants[tenant]
	r.mu.RUnlock()
	if ts != nil || !create {
		return ts
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ts = r.tenants[tenant]; ts == nil {
		ts = newTenantState()
		r.tenants[tenant] = ts
	}
	return ts
}

// Subscribe returns a channel that receives a value (coalesced: at most one
// pending) whenever any tenant's state changed, and a function that ends the
// subscription. Compare Version with what you last saw to find which tenant.
func (r *Replica) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.subsMu.Lock()
	r.subs[ch] = struct{}{}
	r.subsMu.Unlock()
	return ch, func() {
		r.subsMu.Lock()
		delete(r.subs, ch)
		r.subsMu.Unlock()
	}
}

func (r *Replica) notify() {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	for ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Version is the tenant's commit seq the replica has applied: it grows with
// every change, so a rater recompiles when it differs from the one it
// compiled.
func (r *Replica) Version(tenant string) uint64 {
	ts := r.state(tenant, false)
	if ts == nil {
		return 0
	}
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.seq
}

// Tenants lists the tenants the replica holds, sorted.
func (r *Replica) Tenants() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.tenants))
	for t := range r.tenants {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Get returns the current revision of an entity (a tombstone, Deleted set,
// if it was deleted), or false if it never existed.
func (r *Replica) Get(tenant string, k Kind, id string) (Entity, bool) {
	ts := r.state(tenant, false)
	if ts == nil {
		return Entity{}, false
	}
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	rc := ts.tables[k].get(id)
	if rc == nil {
		return Entity{}, false
	}
	return entityOf(k, rc), true
}

// Search returns up to size live entities of kind k matching q, created
// after the cursor after (0: from the first), in creation order, and
// whether more follow.
func (r *Replica) Search(tenant string, k Kind, q Query, after uint64, size int) ([]Entity, bool) {
	ts := r.state(tenant, false)
	if ts == nil {
		return nil, false
	}
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	tb := ts.tables[k]
	c := tb.compile(q)
	found := tb.search(&c, after, size)
	more := len(found) > size
	if more {
		found = found[:size]
	}
	out := make([]Entity, len(found))
	for i, rc := range found {
		out[i] = entityOf(k, rc)
	}
	return out, more
}

// Count returns how many live entities of kind k match q.
func (r *Replica) Count(tenant string, k Kind, q Query) int {
	ts := r.state(tenant, false)
	if ts == nil {
		return 0
	}
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	tb := ts.tables[k]
	c := tb.compile(q)
	return tb.count(&c)
}

// Snapshot is a consistent, read-only view of one tenant's masters and
// contracts, as of its commit Seq.
type Snapshot struct {
	Tenant    string
	Seq       uint64
	Catalogue *catalog.Catalogue
}

// CustomerStatus returns a live customer's status (active or suspended), or
// false if the tenant has no such customer.
func (r *Replica) CustomerStatus(tenant, id string) (string, bool) {
	e, ok := r.Get(tenant, KindCustomer, id)
	if !ok || e.Deleted {
		return "", false
	}
	st := e.Value.(*StoredCustomer).Status
	if st == "" {
		st = "active"
	}
	return st, true
}

// Snapshot returns the tenant's current snapshot. It is built on first use
// after a change and shared until the next change; never modify it.
func (r *Replica) Snapshot(tenant string) *Snapshot {
	ts := r.state(tenant, false)
	if ts == nil {
		return &Snapshot{Tenant: tenant, Catalogue: &catalog.Catalogue{Tenant: tenant}}
	}
	if s := ts.snap.Load(); s != nil {
		return s
	}
	ts.mu.RLock()
	s := buildSnapshot(tenant, ts)
	ts.mu.RUnlock()
	// Publish unless a change arrived meanwhile (it invalidated the cache
	// and a newer snapshot will be built on the next call).
	ts.mu.Lock()
	if ts.seq == s.Seq && ts.snap.Load() == nil {
		ts.snap.Store(s)
	}
	ts.mu.Unlock()
	return s
}

// Catalogue returns the tenant's current catalogue: every master and every
// live basic, service and discount contract. See Snapshot.
func (r *Replica) Catalogue(tenant string) *catalog.Catalogue { return r.Snapshot(tenant).Catalogue }

func buildSnapshot(tenant string, ts *tenantState) *Snapshot {
	c := &catalog.Catalogue{Tenant: tenant}
	collect(ts.tables[KindService], &c.Services)
	collect(ts.tables[KindPlan], &c.Plans)
	collect(ts.tables[KindFee], &c.Fees)
	collect(ts.tables[KindElement], &c.Elements)
	collect(ts.tables[KindRateTable], &c.RateTables)
	collect(ts.tables[KindDiscountTable], &c.DiscountTables)
	collect(ts.tables[KindBasicContract], &c.BasicContracts)
	collect(ts.tables[KindServiceContract], &c.ServiceContracts)
	collect(ts.tables[KindDiscountContract], &c.DiscountContracts)
	return &Snapshot{Tenant: tenant, Seq: ts.seq, Catalogue: c}
}

// collect copies a table's live documents into a slice, sorted by id for
// masters (stable output for export and diffs) and in creation order for
// contracts.
func collect[T any](tb *table, out *[]T) {
	list := make([]T, 0, tb.live)
	for i := range tb.recs {
		if !tb.recs[i].deleted {
			list = append(list, *tb.recs[i].val.(*T))
		}
	}
	if tb.spec.master {
		ids := make([]string, 0, len(list))
		for i := range tb.recs {
			if !tb.recs[i].deleted {
				ids = append(ids, tb.recs[i].id)
			}
		}
		idx := make([]int, len(list))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
		sorted := make([]T, len(list))
		for i, j := range idx {
			sorted[i] = list[j]
		}
		list = sorted
	}
	*out = list
}

type replicaMetrics struct {
	applied     prometheus.Counter
	errors      prometheus.Counter
	pollSeconds prometheus.Histogram
	lastPoll    prometheus.Gauge
	loadSeconds prometheus.Gauge
}

func newReplicaMetrics(reg prometheus.Registerer) *replicaMetrics {
	return &replicaMetrics{
		applied: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_catalog_replica_applied_total",
			Help: "Entity revisions applied to the in-memory catalogue replica (load, polls and own writes)."})),
		errors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_catalog_replica_errors_total",
			Help: "Failed loads and polls of the catalogue replica."})),
		pollSeconds: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kakin_catalog_replica_poll_seconds",
			Help: "Time of one change poll of the catalogue replica.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)})),
		lastPoll: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_catalog_replica_last_poll_timestamp_seconds",
			Help: "When the catalogue replica last finished a poll (staleness = now - this)."})),
		loadSeconds: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_catalog_replica_load_seconds",
			Help: "Duration of the catalogue replica's last full load."})),
	}
}

// register registers c, or returns the collector already registered under
// its name (one process may build the store's parts more than once).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Healthy is nil once the replica is loaded and its last poll is recent; a
// readiness check.
func (r *Replica) Healthy(ctx context.Context) error {
	select {
	case <-r.ready:
	default:
		return errors.New("catalogue replica is loading")
	}
	r.healthMu.Lock()
	last := r.lastPoll
	r.healthMu.Unlock()
	if limit := max(20*r.opts.PollInterval, 10*time.Second); !last.IsZero() && time.Since(last) > limit {
		return fmt.Errorf("catalogue replica has not polled successfully for %s", time.Since(last).Round(time.Second))
	}
	return nil
}
