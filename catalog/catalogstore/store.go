package catalogstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/redislock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Store errors; test with errors.Is or errors.As.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// ConflictError is a write whose expected revision is not the current one.
type ConflictError struct {
	Kind     Kind
	ID       string
	Expected uint64
	Current  uint64 // 0 when the entity was deleted
}

func (e *ConflictError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("%s %q was deleted; expected revision %d", e.Kind.Label(), e.ID, e.Expected)
	}
	return fmt.Sprintf("%s %q is at revision %d, not %d: it was changed meanwhile", e.Kind.Label(), e.ID, e.Current, e.Expected)
}

// FieldError is one problem with an entity of a write.
type FieldError struct {
	Kind   Kind
	ID     string
	Field  string
	Reason string
}

// ValidationError lists what is wrong with a write (unprocessable).
type ValidationError struct{ Errors []FieldError }

func (e *ValidationError) Error() string {
	s := "invalid"
	for i, f := range e.Errors {
		if i == 5 {
			s += fmt.Sprintf("; and %d more", len(e.Errors)-5)
			break
		}
		s += fmt.Sprintf("; %s %s %s: %s", f.Kind, f.ID, f.Field, f.Reason)
	}
	return s
}

// Ref names an entity that references another.
type Ref struct {
	Kind  Kind
	ID    string
	Field string // where it references the deleted entity
}

// ReferencedError refuses to delete an entity that others still reference.
type ReferencedError struct {
	Kind  Kind
	ID    string
	By    []Ref // the first references found
	Total int   // how many references there are
}

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("%s %q is still referenced by %d entities (first: %s %s)", e.Kind.Label(), e.ID, e.Total, e.By[0].Kind.Label(), e.By[0].ID)
}

// InEffectError refuses to delete a contract that has taken effect. Such a
// contract may have produced charges (usage lines, fixed fees, discounts) in
// periods that are open or closed; a delete would leave them in rated_usage
// with no contract to re-price or correct them, so it is cancelled (service
// and discount contracts) or ended (basic contracts) instead.
type InEffectError struct {
	Kind  Kind
	ID    string
	Start catalog.Date // the contract's start_date
	Zone  string       // the time zone the start was judged in
}

func (e *InEffectError) Error() string {
	return fmt.Sprintf("%s %q took effect on %s (%s) and may have charges: it cannot be deleted", e.Kind.Label(), e.ID, e.Start, e.Zone)
}

// StoreOptions configure a Store.
type StoreOptions struct {
	// LockTTL bounds how long a crashed writer can block the tenant's
	// writes; a live writer extends it. 15 s when zero.
	LockTTL time.Duration
	// LockWait is how long a write waits for the tenant's lock before
	// giving up with ErrBusy. 5 s when zero.
	LockWait   time.Duration
	Log        *slog.Logger
	Registerer prometheus.Registerer
	// Now is the business clock (clock.Now when nil): when a change is
	// recorded (changed_at), and whether a contract has taken effect (its
	// start_date has come by Now() + MaxFutureSkew: it may have charges and
	// is not deleted, InEffectError).
	Now func() time.Time
	// MaxFutureSkew is how far ahead of now ingest accepts event times (its
	// --max-future-skew; 24 h when zero): usage dated that far ahead may
	// already be rated under a contract that starts then.
	MaxFutureSkew time.Duration
	// DataLimits returns a tenant's data limits (DefaultDataLimits when nil).
	DataLimits DataLimitsFunc
}

// Store is the versioned system of record of the catalogue, customers,
// groups and contracts. Every write is a transaction on one tenant: under
// the tenant's Redis write lock it brings the replica up to exactly the
// committed state (Replica.Sync), checks revisions and references against
// it, and appends the new revisions to catalog_entities with the tenant's
// next commit sequence numbers. Nothing is overwritten: each change is a new
// revision with who and when, and a delete is a tombstone revision.
type Store struct {
	conn    driver.Conn
	rdb     redis.UniversalClient
	replica *Replica
	sealer  Sealer
	opts    StoreOptions
	metrics *storeMetrics
}

// NewStore returns a store writing through conn and locking through rdb. Its
// reads and validations use replica, which it keeps current with its own
// writes. sealer encrypts customers' personal fields; without one, customers
// with personal fields cannot be written or read.
func NewStore(conn driver.Conn, rdb redis.UniversalClient, replica *Replica, sealer Sealer, opts StoreOptions) *Store {
	if opts.LockTTL <= 0 {
		opts.LockTTL = 15 * time.Second
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	if opts.MaxFutureSkew <= 0 {
		opts.MaxFutureSkew = 24 * time.Hour
	}
	return &Store{conn: conn, rdb: rdb, replica: replica, sealer: sealer, opts: opts, metrics: newStoreMetrics(opts.Registerer)}
}

// Replica is the store's replica.
func (s *Store) Replica() *Replica { return s.replica }

// Change is one entity a Transact callback wrote, as committed.
type Change struct {
	Op     string // created, updated, deleted
	Entity Entity
}

// Transact runs fn on tenant's current state under the tenant's write lock
// and commits what it staged, after validating it, as one insert. fn may be
// called once; it must not keep tx.
func (s *Store) Transact(ctx context.Context, tenant, actor string, fn func(tx *Tx) error) ([]Change, error) {
	start := time.Now()
	changes, err := s.transact(ctx, tenant, actor, fn)
	outcome := "ok"
	var ce *ConflictError
	var ve *ValidationError
	var re *ReferencedError
	var ie *InEffectError
	switch {
	case err == nil:
	case errors.As(err, &ce), errors.Is(err, ErrExists):
		outcome = "conflict"
	case errors.As(err, &ve), errors.As(err, &re), errors.As(err, &ie), errors.Is(err, ErrNotFound), errors.As(err, new(*LimitError)):
		outcome = "refused"
	default:
		outcome = "error"
	}
	s.metrics.writes.WithLabelValues(outcome).Inc()
	s.metrics.seconds.Observe(time.Since(start).Seconds())
	return changes, err
}

func (s *Store) transact(ctx context.Context, tenant, actor string, fn func(tx *Tx) error) ([]Change, error) {
	if err := s.replica.WaitReady(ctx); err != nil {
		return nil, err
	}
	lockStart := time.Now()
	lock, err := acquire(ctx, s.rdb, tenant, s.opts.LockTTL, s.opts.LockWait)
	s.metrics.lockWait.Observe(time.Since(lockStart).Seconds())
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	head, err := s.replica.Sync(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC().Truncate(time.Second)
	tx := &Tx{ctx: ctx, s: s, tenant: tenant, ts: s.replica.state(tenant, true), staged: map[stageKey]*staged{}}
	if err := fn(tx); err != nil {
		return nil, err
	}
	if err := tx.validate(); err != nil {
		return nil, err
	}
	if err := tx.checkLimits(); err != nil {
		return nil, err
	}
	rows, recs, changes, err := tx.build(head, now, actor)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return changes, nil
	}
	if err := s.insert(ctx, lock, rows); err != nil {
		return nil, err
	}
	s.replica.apply(tenant, recs)
	return changes, nil
}

// insert appends rows, retrying the identical insert (which collapses into
// the same rows) while the lock is held, so that a transient failure does
// not leave a half-written commit behind.
func (s *Store) insert(ctx context.Context, lock *redislock.Lock, rows []row) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		if err = extend(ctx, lock); err != nil {
			return err
		}
		if err = s.insertOnce(ctx, rows); err == nil {
			return nil
		}
		s.opts.Log.Warn("catalog: insert failed; retrying", "attempt", attempt+1, "err", err)
	}
	return fmt.Errorf("catalog: insert: %w", err)
}

func (s *Store) insertOnce(ctx context.Context, rows []row) error {
	ictx, cancel := context.WithTimeout(ctx, s.opts.LockTTL/3)
	defer cancel()
	batch, err := s.conn.PrepareBatch(ictx, "INSERT INTO catalog_entities ("+columns+")")
	if err != nil {
		return err
	}
	for i := range rows {
		if err := batch.Append(rows[i].values()...); err != nil {
			return err
		}
	}
	return batch.Send()
}

// ---- convenience operations over Transact ----

// Create stores a new entity (v is a *catalog.X document; *catalog.Customer
// for customers). An id that exists is ErrExists; one that was deleted is
// created again, its history continuing.
func (s *Store) Create(ctx context.Context, tenant, actor string, k Kind, v any) (Entity, error) {
	return s.one(ctx, tenant, actor, func(tx *Tx) error { return tx.Create(k, v) })
}

// Update replaces an entity's document; expect is the revision the caller
// read (nil: no check).
func (s *Store) Update(ctx context.Context, tenant, actor string, k Kind, id string, expect *uint64, v any) (Entity, error) {
	return s.one(ctx, tenant, actor, func(tx *Tx) error { return tx.Update(k, id, expect, v) })
}

// Delete writes a tombstone revision; expect as for Update.
func (s *Store) Delete(ctx context.Context, tenant, actor string, k Kind, id string, expect *uint64) (Entity, error) {
	return s.one(ctx, tenant, actor, func(tx *Tx) error { return tx.Delete(k, id, expect) })
}

// Modify applies fn to a copy of the entity's current document and stores
// the result; expect as for Update.
func (s *Store) Modify(ctx context.Context, tenant, actor string, k Kind, id string, expect *uint64, fn func(v any) error) (Entity, error) {
	return s.one(ctx, tenant, actor, func(tx *Tx) error { return tx.Modify(k, id, expect, fn) })
}

// one runs a transaction and returns the state of the first entity it
// touched (also when nothing changed).
func (s *Store) one(ctx context.Context, tenant, actor string, fn func(tx *Tx) error) (Entity, error) {
	var first stageKey
	changes, err := s.Transact(ctx, tenant, actor, func(tx *Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if len(tx.order) > 0 {
			first = tx.order[0]
		}
		return nil
	})
	if err != nil {
		return Entity{}, err
	}
	for _, c := range changes {
		if c.Entity.Kind == first.kind && c.Entity.ID == first.id {
			return s.opened(ctx, tenant, c.Entity)
		}
	}
	e, ok := s.replica.Get(tenant, first.kind, first.id)
	if !ok {
		return Entity{}, ErrNotFound
	}
	return s.opened(ctx, tenant, e)
}

// ---- reads ----

// Get returns the current revision of a live entity (ErrNotFound for one
// that does not exist or was deleted), customers with their personal fields
// decrypted.
func (s *Store) Get(ctx context.Context, tenant string, k Kind, id string) (Entity, error) {
	e, ok := s.replica.Get(tenant, k, id)
	if !ok || e.Deleted {
		return Entity{}, ErrNotFound
	}
	return s.opened(ctx, tenant, e)
}

// Open decrypts a customer entity's personal fields (other kinds are
// returned as they are).
func (s *Store) Open(ctx context.Context, tenant string, e Entity) (Entity, error) {
	return s.opened(ctx, tenant, e)
}

func (s *Store) opened(ctx context.Context, tenant string, e Entity) (Entity, error) {
	if sc, ok := e.Value.(*StoredCustomer); ok {
		c, err := open(ctx, s.sealer, tenant, sc)
		if err != nil {
			return Entity{}, err
		}
		e.Value = c
	}
	return e, nil
}

// BlindTerm turns a search value of a customer's personal field (name,
// address, phone, email) into the term the replica matches.
func (s *Store) BlindTerm(ctx context.Context, tenant, field, value string) (Term, error) {
	b, err := blindTerm(ctx, s.sealer, tenant, field, value)
	if err != nil {
		return Term{}, err
	}
	return Term{Facet: field, Value: b}, nil
}

// AsOf returns the revision of an entity that was current at t (read from
// ClickHouse: the newest revision changed at or before t). A tombstone is
// returned with Deleted set; ErrNotFound if the entity did not exist yet.
func (s *Store) AsOf(ctx context.Context, tenant string, k Kind, id string, t time.Time) (Entity, error) {
	rows, err := s.history(ctx, tenant, k, id, `AND changed_at <= ? ORDER BY revision DESC LIMIT 1`, t.UTC())
	if err != nil {
		return Entity{}, err
	}
	if len(rows) == 0 {
		return Entity{}, ErrNotFound
	}
	return s.opened(ctx, tenant, rows[0])
}

// History returns an entity's revisions after the revision after, oldest
// first, at most size of them (tombstones keep the document they deleted).
func (s *Store) History(ctx context.Context, tenant string, k Kind, id string, after uint64, size int) ([]Entity, error) {
	out, err := s.history(ctx, tenant, k, id, `AND revision > ? ORDER BY revision LIMIT ?`, after, size)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i], err = s.opened(ctx, tenant, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) history(ctx context.Context, tenant string, k Kind, id, tail string, args ...any) ([]Entity, error) {
	q := `SELECT ` + selectColumns(true) + ` FROM catalog_entities FINAL WHERE tenant = ? AND kind = ? AND id = ? ` + tail
	rows, err := s.conn.Query(ctx, q, append([]any{tenant, k.String(), id}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("catalog: history: %w", err)
	}
	defer rows.Close()
	var out []Entity
	for rows.Next() {
		var r row
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return nil, fmt.Errorf("catalog: history: %w", err)
		}
		deleted := r.deleted == 1
		r.deleted = 0 // decode the document a tombstone keeps
		kk, rc, err := decode(&r, newInterner())
		if err != nil {
			return nil, err
		}
		rc.deleted = deleted
		out = append(out, entityOf(kk, &rc))
	}
	return out, rows.Err()
}

// ---- transactions ----

type stageKey struct {
	kind Kind
	id   string
}

type staged struct {
	key     stageKey
	val     any  // the new document (customers: *StoredCustomer after build); nil for a delete
	plain   any  // customers: the *catalog.Customer as given, validated before sealing
	base    *rec // the current record (nil: never existed)
	deleted bool
}

// Tx is a write transaction on one tenant (see Store.Transact). Reads see the
// committed state plus what the transaction staged.
type Tx struct {
	ctx    context.Context
	s      *Store
	tenant string
	ts     *tenantState
	staged map[stageKey]*staged
	order  []stageKey
}

// committed returns the committed record of (k, id), or nil.
func (tx *Tx) committed(k Kind, id string) *rec {
	tx.ts.mu.RLock()
	defer tx.ts.mu.RUnlock()
	r := tx.ts.tables[k].get(id)
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// Get returns the live document of (k, id) as the transaction sees it
// (customers as *StoredCustomer), or false.
func (tx *Tx) Get(k Kind, id string) (any, bool) {
	if st, ok := tx.staged[stageKey{k, id}]; ok {
		if st.deleted {
			return nil, false
		}
		return st.val, true
	}
	r := tx.committed(k, id)
	if r == nil || r.deleted {
		return nil, false
	}
	return r.val, true
}

// Revision returns the committed revision of (k, id) (0 if it never
// existed) and whether it is live.
func (tx *Tx) Revision(k Kind, id string) (uint64, bool) {
	r := tx.committed(k, id)
	if r == nil {
		return 0, false
	}
	return r.rev, !r.deleted
}

func (tx *Tx) stage(k Kind, id string, val, plain any, deleted bool) {
	key := stageKey{k, id}
	if st, ok := tx.staged[key]; ok {
		st.val, st.plain, st.deleted = val, plain, deleted
		return
	}
	tx.staged[key] = &staged{key: key, val: val, plain: plain, base: tx.committed(k, id), deleted: deleted}
	tx.order = append(tx.order, key)
}

// check applies the precondition: the entity must be live and, when expect
// is set, at that revision.
func (tx *Tx) check(k Kind, id string, expect *uint64) error {
	if st, ok := tx.staged[stageKey{k, id}]; ok {
		if st.deleted {
			return fmt.Errorf("%s %q: %w", k.Label(), id, ErrNotFound)
		}
		return nil
	}
	r := tx.committed(k, id)
	if r == nil || (r.deleted && expect == nil) {
		return fmt.Errorf("%s %q: %w", k.Label(), id, ErrNotFound)
	}
	if expect != nil && (r.deleted || r.rev != *expect) {
		cur := r.rev
		if r.deleted {
			cur = 0
		}
		return &ConflictError{Kind: k, ID: id, Expected: *expect, Current: cur}
	}
	return nil
}

// Create stages a new entity; ErrExists if it is live.
func (tx *Tx) Create(k Kind, v any) error {
	id := k.ID(v)
	if _, live := tx.Get(k, id); live {
		return fmt.Errorf("%s %q: %w", k.Label(), id, ErrExists)
	}
	tx.stagePut(k, id, v)
	return nil
}

// Update stages a replacement of a live entity's document.
func (tx *Tx) Update(k Kind, id string, expect *uint64, v any) error {
	if err := tx.check(k, id, expect); err != nil {
		return err
	}
	k.SetID(v, id)
	tx.stagePut(k, id, v)
	return nil
}

// Put stages v whether or not the entity exists (catalogue files).
func (tx *Tx) Put(k Kind, v any) {
	tx.stagePut(k, k.ID(v), v)
}

func (tx *Tx) stagePut(k Kind, id string, v any) {
	if k == KindCustomer {
		tx.stage(k, id, storedOf(v), v, false)
		return
	}
	tx.stage(k, id, v, nil, false)
}

// Delete stages a tombstone of a live entity.
func (tx *Tx) Delete(k Kind, id string, expect *uint64) error {
	if err := tx.check(k, id, expect); err != nil {
		return err
	}
	tx.stage(k, id, nil, nil, true)
	return nil
}

// Modify stages fn applied to a deep copy of the live document.
func (tx *Tx) Modify(k Kind, id string, expect *uint64, fn func(v any) error) error {
	if err := tx.check(k, id, expect); err != nil {
		return err
	}
	cur, _ := tx.Get(k, id)
	cp, err := deepCopy(k, cur)
	if err != nil {
		return err
	}
	if err := fn(cp); err != nil {
		return err
	}
	k.SetID(cp, id)
	if sc, ok := cp.(*StoredCustomer); ok {
		tx.stage(k, id, sc, nil, false) // personal fields unchanged: already sealed
		return nil
	}
	tx.stage(k, id, cp, nil, false)
	return nil
}

// deepCopy copies a document through its JSON form.
func deepCopy(k Kind, v any) (any, error) {
	if sc, ok := v.(*StoredCustomer); ok {
		c := *sc
		c.Attributes = nil
		if sc.Attributes != nil {
			c.Attributes = make(map[string]string, len(sc.Attributes))
			for a, b := range sc.Attributes {
				c.Attributes[a] = b
			}
		}
		return &c, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeDoc(k, b)
}

// build turns the staged changes into rows with the tenant's next seqs,
// skipping puts that change nothing.
func (tx *Tx) build(head uint64, now time.Time, actor string) ([]row, []keyedRec, []Change, error) {
	actor = internShared(actor)
	var rows []row
	var recs []keyedRec
	var changes []Change
	seq := head
	for _, key := range tx.order {
		st := tx.staged[key]
		k := key.kind
		if st.deleted && (st.base == nil || st.base.deleted) {
			continue
		}
		if k == KindCustomer && tx.s.replica.opts.WithoutPII {
			return nil, nil, nil, errors.New("catalog: this store's replica holds no customer documents (WithoutPII); it cannot write customers")
		}
		if !st.deleted {
			if k == KindCustomer && st.plain != nil {
				sc, err := seal(tx.ctx, tx.s.sealer, tx.tenant, st.plain.(*catalog.Customer))
				if err != nil {
					return nil, nil, nil, err
				}
				st.val = sc
			}
			if st.base != nil && !st.base.deleted {
				same, err := tx.unchanged(k, st)
				if err != nil {
					return nil, nil, nil, err
				}
				if same {
					continue
				}
			}
		}
		seq++
		r := row{tenant: tx.tenant, kind: k.String(), id: key.id, revision: 1, seq: seq, createdSeq: seq, createdAt: now,
			changedAt: now, changedBy: actor}
		op := "created"
		if b := st.base; b != nil {
			r.revision = b.rev + 1
			r.createdSeq, r.createdAt = b.created, time.Unix(b.createdAt, 0).UTC()
			if !b.deleted {
				op = "updated"
			}
		}
		doc := st.val
		if st.deleted {
			op, r.deleted, doc = "deleted", 1, st.base.val // a tombstone keeps what it deleted
		}
		var err error
		if r.doc, err = encodeDoc(doc); err != nil {
			return nil, nil, nil, err
		}
		if sc, ok := doc.(*StoredCustomer); ok {
			r.pii, r.blind = string(sc.PII), sc.Blind
		}
		r.customer = specs[k].customer(doc)
		if specs[k].term != nil {
			r.start, r.end = termTimes(specs[k].term(doc))
		}
		rows = append(rows, r)
		rc := rec{id: key.id, created: r.createdSeq, rev: r.revision, seq: seq, createdAt: r.createdAt.Unix(),
			changedAt: now.Unix(), by: actor, deleted: st.deleted, val: st.val}
		if st.deleted {
			rc.val = nil
		}
		recs = append(recs, keyedRec{kind: k, rec: rc})
		e := entityOf(k, &rc)
		if st.deleted {
			e.Value = st.base.val
		}
		changes = append(changes, Change{Op: op, Entity: e})
	}
	return rows, recs, changes, nil
}

// unchanged reports whether a put would store the same document again.
func (tx *Tx) unchanged(k Kind, st *staged) (bool, error) {
	a, err := encodeDoc(st.val)
	if err != nil {
		return false, err
	}
	b, err := encodeDoc(st.base.val)
	if err != nil {
		return false, err
	}
	if a != b {
		return false, nil
	}
	if k != KindCustomer {
		return true, nil
	}
	// Customers: compare the personal fields in clear.
	newPlain := catalog.Personal{}
	if c, ok := st.plain.(*catalog.Customer); ok {
		newPlain = c.Personal
	} else {
		return bytes.Equal(st.val.(*StoredCustomer).PII, st.base.val.(*StoredCustomer).PII), nil
	}
	old, err := open(tx.ctx, tx.s.sealer, tx.tenant, st.base.val.(*StoredCustomer))
	if err != nil {
		return false, err
	}
	return old.Personal == newPlain, nil
}

type storeMetrics struct {
	writes   *prometheus.CounterVec
	seconds  prometheus.Histogram
	lockWait prometheus.Histogram
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	return &storeMetrics{
		writes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_catalog_writes_total",
			Help: "Catalogue write transactions by outcome: ok, conflict (stale revision, existing id), refused (invalid, referenced, not found), error."}, []string{"outcome"})),
		seconds: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kakin_catalog_write_seconds",
			Help: "Duration of catalogue write transactions (lock, catch-up, validation, insert).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)})),
		lockWait: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kakin_catalog_lock_wait_seconds",
			Help: "Time spent waiting for a tenant's catalogue write lock.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)})),
	}
}

// ErrUnknownFilter is a search filter the kind does not have.
var ErrUnknownFilter = errors.New("unknown filter")

// Filter adds the search filter name=value of kind k to q: an exact value of
// a field, a personal field of a customer (through its blind index), or a
// predicate (active_on, valid_at).
func (s *Store) Filter(ctx context.Context, tenant string, k Kind, name, value string, q *Query) error {
	sp := &specs[k]
	for _, f := range sp.facets {
		if f.name != name {
			continue
		}
		if k == KindCustomer && contains(blindFields[:], name) {
			t, err := s.BlindTerm(ctx, tenant, name, value)
			if err != nil {
				return err
			}
			q.Terms = append(q.Terms, t)
			return nil
		}
		q.Terms = append(q.Terms, Term{Facet: name, Value: value})
		return nil
	}
	for _, p := range sp.preds {
		if p.name == "active_on" && p.name == name {
			d, err := catalog.ParseDate(value)
			if err != nil {
				return err
			}
			q.ActiveOn = &d
			return nil
		}
		if p.name == name {
			fn, err := p.parse(value)
			if err != nil {
				return err
			}
			q.Where = append(q.Where, fn)
			return nil
		}
	}
	return ErrUnknownFilter
}
