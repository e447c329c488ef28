package catalogstore

import (
	"sort"
	"time"
	"unique"

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
	overflow  uint8 // bit i: facet i has more values than its slot holds
	sym       [symSlots]uint32
	h         [hashSlots]uint64
	val       any // *catalog.X, customers *StoredCustomer; nil for a tombstone
}

// table is one kind's records of one tenant.
type table struct {
	spec *spec
	recs []rec
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

// index fills r's facet slots from its value.
func (t *table) index(r *rec) {
	r.sym, r.h, r.overflow = [symSlots]uint32{}, [hashSlots]uint64{}, 0
	if r.val == nil {
		return
	}
	for i, f := range t.spec.facets {
		vals := f.values(r.val)
		if len(vals) == 0 {
			continue
		}
		slot := t.spec.symSlot[i]
		if f.high {
			r.h[slot] = hashValue(vals[0])
		} else {
			r.sym[slot] = t.symbol(vals[0])
		}
		if len(vals) > 1 {
			r.overflow |= 1 << i
		}
	}
}

// put stores a revision unless the table already has it or a newer one. It
// reports whether it changed anything. New entities must arrive in created
// order (appended); loading sorts once at the end instead (see sortLoaded).
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
		t.index(cur)
		return true
	}
	t.recs = append(t.recs, r)
	i := int32(len(t.recs) - 1)
	t.byID[r.id] = i
	if !r.deleted {
		t.live++
	}
	// Appending out of order (a replica that missed nothing never does)
	// would break the keyset order: restore it.
	if n := len(t.recs); n > 1 && t.recs[n-2].created > r.created {
		t.sortLoaded()
	}
	t.index(&t.recs[t.byID[r.id]])
	return true
}

// sortLoaded puts records in created order and rebuilds the id index.
func (t *table) sortLoaded() {
	sort.Slice(t.recs, func(i, j int) bool { return t.recs[i].created < t.recs[j].created })
	for i := range t.recs {
		t.byID[t.recs[i].id] = int32(i)
	}
}

func (t *table) get(id string) *rec {
	if i, ok := t.byID[id]; ok {
		return &t.recs[i]
	}
	return nil
}

// Query is a search: exact values of facets, and predicates.
type Query struct {
	Terms []Term
	Where []func(v any) bool
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
	impossible bool
}

// compile resolves a query against the table's interned values. An unknown
// facet name is a programming error (the API checks names).
func (t *table) compile(q Query) compiled {
	c := compiled{where: q.Where}
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

func (c *compiled) match(r *rec) bool {
	if r.deleted {
		return false
	}
	verify := false
	for i := range c.terms {
		t := &c.terms[i]
		switch {
		case t.high && r.h[t.slot] == t.hash:
			verify = true // a hash match: confirm the value
		case !t.high && r.sym[t.slot] == t.sym:
		case r.overflow&t.bit != 0:
			verify = true // more values than the slot holds
		default:
			return false
		}
	}
	if verify {
		for i := range c.terms {
			if !contains(c.terms[i].facet.values(r.val), c.terms[i].value) {
				return false
			}
		}
	}
	for _, w := range c.where {
		if !w(r.val) {
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
		r := &t.recs[i]
		if c.match(r) {
			out = append(out, r)
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
	if len(c.terms) == 0 && len(c.where) == 0 {
		return t.live
	}
	n := 0
	for i := range t.recs {
		if c.match(&t.recs[i]) {
			n++
		}
	}
	return n
}

// intern returns a canonical copy of s, so that the many records naming the
// same actor or customer share one string.
func intern(s string) string { return unique.Make(s).Value() }

func unixOf(t time.Time) int64 { return t.Unix() }
