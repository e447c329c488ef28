package pricing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/shopspring/decimal"
)

// State is the running state of one charge (Key): what the period's records
// aggregate to so far. It is a small value: a handful of integers, plus, for
// unique_count, one 128-bit hash and a count per distinct value. Its zero
// value is the empty period. It is exact: quantities are integers at 10^-9
// (the scale ingest allows), the percentage model's running charge is an
// integer at 10^-18; values beyond 128 bits are refused (ReasonOverflow), never
// rounded.
//
// State is encoded with MarshalBinary/AppendBinary (a versioned varint
// format, typically 10-20 bytes) for persistence, e.g. in Redis next to the
// position of the last record applied (Seq), so that a redelivered record can
// be recognised and not applied twice.
type State struct {
	agg     uint8  // aggregation the state was built with (0: none yet)
	records uint64 // records applied
	qty     u128   // aggregated quantity × 10^9
	atMax   uint64 // max: records at the maximum
	latest  int64  // latest: time (Unix ns) of the latest record
	latestH uint64 // latest: hash of its id (breaks ties in time)
	charged u128   // percentage: running sum of transaction charges × 10^18
	uniques []uniqueValue
	// peaks: capacity, the largest quantity × 10^9 of one record of each
	// unit (the capacity table's units, in order).
	peaks [catalog.MaxCapacityUnits]u128
	// Seq is the caller's position of the last record applied (for
	// example its Kafka offset + 1). The engine never reads or changes it.
	Seq uint64
}

// uniqueValue is one distinct value of a unique_count element: the 128-bit
// xxh3 hash of the value and how many live records carry it (so that
// invalidating a record is exact).
type uniqueValue struct {
	hi, lo uint64
	n      uint64
}

// Records is the number of records the state aggregates.
func (s *State) Records() uint64 { return s.records }

// Quantity is the aggregated quantity (for percentage charges: the sum of the
// transaction amounts), before per-period quantity rounding.
func (s *State) Quantity() decimal.Decimal { return decimalOf(s.qty, qtyScale) }

// Empty reports whether no record has been applied.
func (s *State) Empty() bool { return s.records == 0 }

// tally is the part of a state the cost depends on.
type tally struct {
	records uint64
	qty     u128
	charged u128
	peaks   *[catalog.MaxCapacityUnits]u128 // capacity
}

func (s *State) tally() tally { return tally{s.records, s.qty, s.charged, &s.peaks} }

var aggCodes = map[catalog.Aggregation]uint8{
	catalog.AggSum: 1, catalog.AggMax: 2, catalog.AggCount: 3, catalog.AggUniqueCount: 4, catalog.AggLatest: 5,
	catalog.AggTimeWeighted: aggTimeWeighted,
}

// errAggregationChanged: the element's aggregation differs from the one the
// running state was built with.
var errAggregationChanged = errors.New("aggregation changed inside the period")

// ErrNeedsRecompute is returned by Charge.Remove when the state cannot be
// corrected incrementally (the maximum or latest record was removed, or the
// percentage model's free allowance depends on the removed transaction): the
// caller re-rates the period from its records with RatePeriod.
var ErrNeedsRecompute = errors.New("pricing: the period must be recomputed from its records")

// errInconsistent: a removal that does not match the state (a record removed
// that was never applied).
var errInconsistent = errors.New("pricing: record is not part of the running state")

// record is what one usage record contributes to a state.
type record struct {
	qty    u128   // quantity × 10^9, after per-record rounding
	at     int64  // event time, Unix ns (latest)
	idHash uint64 // latest
	uhi    uint64 // unique_count: hash of the attribute value
	ulo    uint64
	unit   int // capacity: the index of the record's unit
}

// next computes the state's scalars after adding r, without changing s.
// It returns the index where a new unique value goes (or -1).
func (s *State) next(agg uint8, r record) (State, int, error) {
	if s.agg != 0 && s.agg != agg && s.records > 0 {
		return State{}, -1, errAggregationChanged
	}
	n := *s
	n.agg = agg
	n.records++
	ins := -1
	var ok bool
	switch agg {
	case 1: // sum
		if n.qty, ok = n.qty.add(r.qty); !ok {
			return State{}, -1, errOverflow
		}
	case 2: // max
		switch c := r.qty.cmp(s.qty); {
		case s.records == 0 || c > 0:
			n.qty, n.atMax = r.qty, 1
		case c == 0:
			n.atMax++
		}
	case 3: // count
		if n.qty, ok = n.qty.add(u128{0, qtyOne}); !ok {
			return State{}, -1, errOverflow
		}
	case 4: // unique_count
		i, found := s.findUnique(r.uhi, r.ulo)
		if !found {
			ins = i
			if n.qty, ok = n.qty.add(u128{0, qtyOne}); !ok {
				return State{}, -1, errOverflow
			}
		}
	case 5, aggTimeWeighted: // latest; time_weighted keeps the latest level for display
		if s.records == 0 || r.at > s.latest || (r.at == s.latest && r.idHash >= s.latestH) {
			n.qty, n.latest, n.latestH = r.qty, r.at, r.idHash
		}
	case aggCapacity:
		if r.qty.cmp(s.peaks[r.unit]) > 0 {
			n.peaks[r.unit] = r.qty
		}
	}
	return n, ins, nil
}

// commit makes n (from next) the state and records the unique value.
func (s *State) commit(n State, agg uint8, r record, ins int) {
	uniques := s.uniques
	if agg == 4 {
		if ins >= 0 {
			uniques = append(uniques, uniqueValue{})
			copy(uniques[ins+1:], uniques[ins:])
			uniques[ins] = uniqueValue{hi: r.uhi, lo: r.ulo, n: 1}
		} else if i, found := s.findUnique(r.uhi, r.ulo); found {
			uniques[i].n++
		}
	}
	*s = n
	s.uniques = uniques
}

// prev computes the state's scalars after removing r (a record applied
// before), without changing s. It returns the index of a unique value that
// disappears (or -1).
func (s *State) prev(agg uint8, r record) (State, int, error) {
	if s.records == 0 {
		return State{}, -1, errInconsistent
	}
	if s.agg != agg {
		return State{}, -1, errAggregationChanged
	}
	n := *s
	n.records--
	del := -1
	switch agg {
	case 1: // sum
		if r.qty.cmp(s.qty) > 0 {
			return State{}, -1, errInconsistent
		}
		n.qty = s.qty.sub(r.qty)
	case 2: // max
		switch c := r.qty.cmp(s.qty); {
		case c > 0:
			return State{}, -1, errInconsistent
		case c == 0 && s.records == 1:
			n.qty, n.atMax = u128{}, 0
		case c == 0 && s.atMax > 1:
			n.atMax--
		case c == 0:
			return State{}, -1, ErrNeedsRecompute // the only record at the maximum
		}
	case 3: // count
		n.qty = s.qty.sub(u128{0, qtyOne})
	case 4: // unique_count
		i, found := s.findUnique(r.uhi, r.ulo)
		if !found {
			return State{}, -1, errInconsistent
		}
		if s.uniques[i].n == 1 {
			del = i
			n.qty = s.qty.sub(u128{0, qtyOne})
		}
	case 5: // latest
		if r.at == s.latest && r.idHash == s.latestH {
			if s.records != 1 {
				return State{}, -1, ErrNeedsRecompute // the latest record itself
			}
			n.qty, n.latest, n.latestH = u128{}, 0, 0
		}
	case aggTimeWeighted:
		// An invalidated level change: the level before it holds until the
		// next change, which changes the level-time of the period; the
		// period is re-rated without it (its amount is priced at the
		// period's end from the remaining changes).
		if s.records != 1 {
			return State{}, -1, ErrNeedsRecompute
		}
	case aggCapacity:
		// A record below its unit's peak leaves the peaks (and the tier)
		// as they are; one at the peak may have been the only one there:
		// the period is re-rated without it.
		switch c := r.qty.cmp(s.peaks[r.unit]); {
		case c > 0:
			return State{}, -1, errInconsistent
		case c == 0 && s.records > 1 && !r.qty.isZero():
			return State{}, -1, ErrNeedsRecompute
		}
	}
	if n.records == 0 {
		n.qty, n.atMax, n.latest, n.latestH = u128{}, 0, 0, 0
		n.peaks = [catalog.MaxCapacityUnits]u128{}
	}
	return n, del, nil
}

// commitRemove makes n (from prev) the state and updates the unique values.
func (s *State) commitRemove(n State, agg uint8, r record, del int) {
	uniques := s.uniques
	if agg == 4 {
		if del >= 0 {
			uniques = append(uniques[:del], uniques[del+1:]...)
		} else if i, found := s.findUnique(r.uhi, r.ulo); found {
			uniques[i].n--
		}
	}
	*s = n
	s.uniques = uniques
}

// before reports whether u sorts before v (by hash).
func (u uniqueValue) before(v uniqueValue) bool { return u.hi < v.hi || u.hi == v.hi && u.lo < v.lo }

func (s *State) findUnique(hi, lo uint64) (int, bool) {
	i := sort.Search(len(s.uniques), func(i int) bool {
		u := s.uniques[i]
		return u.hi > hi || (u.hi == hi && u.lo >= lo)
	})
	return i, i < len(s.uniques) && s.uniques[i].hi == hi && s.uniques[i].lo == lo
}

const stateVersion = 1

// AppendBinary appends the state's encoding to b (no allocation when b has
// room): a version byte, the aggregation, a bit set of the non-zero fields,
// then those fields as varints, then the unique values and (capacity) the
// peaks in use as varint pairs. A sum state is typically about 10 bytes.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	nPeaks := 0
	for i := range s.peaks {
		if !s.peaks[i].isZero() {
			nPeaks = i + 1
		}
	}
	fields := [...]uint64{s.records, s.qty.lo, s.Seq, s.qty.hi, s.atMax, uint64(s.latest), s.latestH,
		s.charged.hi, s.charged.lo, uint64(len(s.uniques)), uint64(nPeaks)}
	var present uint64
	for i, v := range fields {
		if v != 0 {
			present |= 1 << uint(i)
		}
	}
	b = append(b, stateVersion, s.agg)
	b = binary.AppendUvarint(b, present)
	for i, v := range fields {
		if present&(1<<uint(i)) == 0 {
			continue
		}
		if i == 5 {
			b = binary.AppendVarint(b, s.latest)
		} else {
			b = binary.AppendUvarint(b, v)
		}
	}
	for _, u := range s.uniques {
		b = binary.BigEndian.AppendUint64(b, u.hi)
		b = binary.BigEndian.AppendUint64(b, u.lo)
		b = binary.AppendUvarint(b, u.n)
	}
	for _, p := range s.peaks[:nPeaks] {
		b = binary.AppendUvarint(b, p.hi)
		b = binary.AppendUvarint(b, p.lo)
	}
	return b, nil
}

// MarshalBinary encodes the state.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(make([]byte, 0, 24)) }

// UnmarshalBinary decodes a state written by MarshalBinary; it reuses the
// receiver's unique-value storage.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) < 3 || b[0] != stateVersion {
		return fmt.Errorf("pricing: state: unknown encoding")
	}
	d := decoder{b: b[2:]}
	present := d.uvarint()
	if present >= 1<<11 {
		return fmt.Errorf("pricing: state: unknown fields")
	}
	var fields [11]uint64
	for i := range fields {
		if present&(1<<uint(i)) == 0 {
			continue
		}
		if i == 5 {
			fields[i] = uint64(d.varint())
		} else {
			fields[i] = d.uvarint()
		}
	}
	n := State{agg: b[1], uniques: s.uniques[:0]}
	n.records, n.qty.lo, n.Seq, n.qty.hi, n.atMax = fields[0], fields[1], fields[2], fields[3], fields[4]
	n.latest, n.latestH, n.charged.hi, n.charged.lo = int64(fields[5]), fields[6], fields[7], fields[8]
	count := fields[9]
	if d.err == nil && count > uint64(len(d.b))/17 {
		return fmt.Errorf("pricing: state: truncated")
	}
	for i := uint64(0); i < count && d.err == nil; i++ {
		var u uniqueValue
		u.hi, u.lo = d.u64(), d.u64()
		u.n = d.uvarint()
		// findUnique searches the values in order, and a value no live
		// record carries is removed: anything else would count wrong.
		if k := len(n.uniques); d.err == nil && (u.n == 0 || k > 0 && !n.uniques[k-1].before(u)) {
			return fmt.Errorf("pricing: state: unique values out of order or unused")
		}
		n.uniques = append(n.uniques, u)
	}
	if fields[10] > catalog.MaxCapacityUnits {
		return fmt.Errorf("pricing: state: %d capacity peaks", fields[10])
	}
	for i := uint64(0); i < fields[10] && d.err == nil; i++ {
		n.peaks[i].hi = d.uvarint()
		n.peaks[i].lo = d.uvarint()
	}
	if d.err != nil {
		return fmt.Errorf("pricing: state: %w", d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("pricing: state: %d trailing bytes", len(d.b))
	}
	if n.agg > aggTimeWeighted {
		return fmt.Errorf("pricing: state: unknown aggregation %d", n.agg)
	}
	*s = n
	return nil
}

type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errTruncated
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}
