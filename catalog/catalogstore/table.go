package catalogstore

import (
	"cmp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/zeebo/xxh3"
)

// rec is the newest revision of one entity in a replica. Records of a kind
// are kept in creation order (created_seq), which is also the order of
// search results: a keyset cursor is the created_seq of the last result, the
// same in every process.
type rec struct {
	id        string
	created   uint64 // created_seq: the tenant seq of the entity's first revision
	rev       uint64
	seq       uint64
	createdAt int64 // unix seconds
	changedAt int64
	by        string
	deleted   bool
	val       any // *catalog.X, customers *StoredCustomer; nil for a tombstone
}

// hot is what a search scan reads of each record, kept apart from the rest
// (one cache line per record): the facet slots, the term in days and flags.
type hot struct {
	sym      [symSlots]uint32
	h        [hashSlots]uint64
	from, to int32 // the contract's term, days since 1970-01-01 (to inclusive); 0, 0 without one
	deleted  bool
	overflow uint8 // bit i: facet i has more values than its slot holds
}

// table is one kind's records of one tenant: recs and hot are parallel.
type table struct {
	spec *spec
	recs []rec
	hot  []hot
	byID map[string]int32
	live int
	dict map[string]uint32 // interned values of low-cardinality facets; 0 = none
}

func newTable(s *spec) *table {
	return &table{spec: s, byID: map[string]int32{}, dict: map[string]uint32{}}
}

func (t *table) symbol(v string) uint32 {
	if s, ok := t.dict[v]; ok {
		return s
	}
	s := uint32(len(t.dict) + 1)
	t.dict[v] = s
	return s
}

func hashValue(v string) uint64 {
	h := xxh3.HashString(v)
	if h == 0 {
		h = 1
	}
	return h
}

// openEnd is the day number of an open-ended term.
const openEnd = int32(1 << 30)

func dayNumber(d catalog.Date) int32 {
	return int32(d.In(time.UTC).Unix() / 86400)
}

// index computes record i's hot part from its value.
func (t *table) index(i int) {
	r, h := &t.recs[i], &t.hot[i]
	*h = hot{deleted: r.deleted}
	if r.val == nil {
		return
	}
	for fi, f := range t.spec.facets {
		vals := f.values(r.val)
		if len(vals) == 0 {
			continue
		}
		slot := t.spec.symSlot[fi]
		if f.high {
			h.h[slot] = hashValue(vals[0])
		} else {
			h.sym[slot] = t.symbol(vals[0])
		}
		if len(vals) > 1 {
			h.overflow |= 1 << fi
		}
	}
	if t.spec.term != nil {
		term := t.spec.term(r.val)
		h.from, h.to = dayNumber(term.Start), openEnd
		if term.End != nil {
			h.to = dayNumber(*term.End)
		}
	}
}

// put stores a revision unless the table already has it or a newer one. It
// reports whether it changed anything. New entities arrive in created order
// (appended); loading sorts once at the end instead (see sortLoaded).
func (t *table) put(r rec) bool {
	if i, ok := t.byID[r.id]; ok {
		cur := &t.recs[i]
		if r.rev <= cur.rev {
			return false
		}
		if cur.deleted && !r.deleted {
			t.live++
		} else if !cur.deleted && r.deleted {
			t.live--
		}
		r.created = cur.created // the entity keeps its place for good
		*cur = r
		t.index(int(i))
		return true
	}
	t.recs = append(t.recs, r)
	t.hot = append(t.hot, hot{})
	t.byID[r.id] = int32(len(t.recs) - 1)
	if !r.deleted {
		t.live++
	}
	// Appending out of order (a replica that missed nothing never does)
	// would break the keyset order: restore it.
	if n := len(t.recs); n > 1 && t.recs[n-2].created > r.created {
		t.sortLoaded()
		return true
	}
	t.index(len(t.recs) - 1)
	return true
}

// sortLoaded puts records in created order, rebuilds the id index and
// indexes every record.
func (t *table) sortLoaded() {
	if !slices.IsSortedFunc(t.recs, func(a, b rec) int { return cmp.Compare(a.created, b.created) }) {
		// Sort small keys, then move each record once.
		type key struct {
			created uint64
			i       int32
		}
		keys := make([]key, len(t.recs))
		for i := range t.recs {
			keys[i] = key{t.recs[i].created, int32(i)}
		}
		slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.created, b.created) })
		sorted := make([]rec, len(t.recs))
		for i, k := range keys {
			sorted[i] = t.recs[k.i]
		}
		t.recs = sorted
	}
	if len(t.byID) == 0 {
		t.byID = make(map[string]int32, len(t.recs))
	}
	t.hot = make([]hot, len(t.recs))
	t.live = 0
	for i := range t.recs {
		t.byID[t.recs[i].id] = int32(i)
		if !t.recs[i].deleted {
			t.live++
		}
		t.index(i)
	}
}

func (t *table) get(id string) *rec {
	if i, ok := t.byID[id]; ok {
		return &t.recs[i]
	}
	return nil
}

// Query is a search: exact values of facets, a day the term must contain,
// and predicates on the document.
type Query struct {
	Terms []Term
	// ActiveOn, when set, keeps contracts whose term contains that day.
	ActiveOn *catalog.Date
	Where    []func(v any) bool
}

// Term asks for entities whose facet has the value.
type Term struct {
	Facet, Value string
}

type compiledTerm struct {
	facet *facet
	value string
	slot  int
	high  bool
	sym   uint32
	hash  uint64
	bit   uint8
}

type compiled struct {
	terms      []compiledTerm
	where      []func(any) bool
	day        int32
	hasDay     bool
	impossible bool
}

// compile resolves a query against the table's interned values. An unknown
// facet name is a programming error (the API checks names).
func (t *table) compile(q Query) compiled {
	c := compiled{where: q.Where}
	if q.ActiveOn != nil {
		if t.spec.term == nil {
			c.impossible = true
		}
		c.day, c.hasDay = dayNumber(*q.ActiveOn), true
	}
	for _, term := range q.Terms {
		for i := range t.spec.facets {
			f := &t.spec.facets[i]
			if f.name != term.Facet {
				continue
			}
			ct := compiledTerm{facet: f, value: term.Value, slot: t.spec.symSlot[i], high: f.high, bit: 1 << i}
			if f.high {
				ct.hash = hashValue(term.Value)
			} else if s, ok := t.dict[term.Value]; ok {
				ct.sym = s
			} else {
				c.impossible = true // no entity ever had this value
			}
			c.terms = append(c.terms, ct)
		}
	}
	return c
}

// match reports whether record i matches; only candidates that pass the
// hot part touch the document.
func (c *compiled) match(t *table, i int) bool {
	h := &t.hot[i]
	if h.deleted {
		return false
	}
	if c.hasDay && (c.day < h.from || c.day > h.to) {
		return false
	}
	verify := false
	for j := range c.terms {
		ct := &c.terms[j]
		switch {
		case ct.high && h.h[ct.slot] == ct.hash:
			verify = true // a hash match: confirm the value
		case !ct.high && h.sym[ct.slot] == ct.sym:
		case h.overflow&ct.bit != 0:
			verify = true // more values than the slot holds
		default:
			return false
		}
	}
	v := t.recs[i].val
	if verify {
		for j := range c.terms {
			if !contains(c.terms[j].facet.values(v), c.terms[j].value) {
				return false
			}
		}
	}
	for _, w := range c.where {
		if !w(v) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// search returns up to size+1 matching records created after the cursor.
func (t *table) search(c *compiled, after uint64, size int) []*rec {
	if c.impossible {
		return nil
	}
	start := sort.Search(len(t.recs), func(i int) bool { return t.recs[i].created > after })
	var out []*rec
	for i := start; i < len(t.recs); i++ {
		if c.match(t, i) {
			out = append(out, &t.recs[i])
			if len(out) > size {
				break
			}
		}
	}
	return out
}

func (t *table) count(c *compiled) int {
	if c.impossible {
		return 0
	}
	if len(c.terms) == 0 && len(c.where) == 0 && !c.hasDay {
		return t.live
	}
	n := 0
	for i := range t.hot {
		if c.match(t, i) {
			n++
		}
	}
	return n
}

// interner shares the strings many records repeat (actors, statuses,
// currencies, codes). It is not safe for concurrent use; loading gives each
// worker its own.
type interner struct{ m map[string]string }

func newInterner() *interner { return &interner{m: map[string]string{}} }

func (in *interner) s(v string) string {
	if v == "" {
		return ""
	}
	if c, ok := in.m[v]; ok {
		return c
	}
	if len(in.m) < 1<<16 { // low-cardinality values only; never grow without bound
		in.m[v] = v
	}
	return v
}

// sharedInterner serves the small batches of polls and own writes.
var sharedInterner = struct {
	sync.Mutex
	in *interner
}{in: newInterner()}

func internShared(v string) string {
	sharedInterner.Lock()
	defer sharedInterner.Unlock()
	return sharedInterner.in.s(v)
}
