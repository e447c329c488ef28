package pricing

import (
	"reflect"
	"testing"
)

// FuzzStateUnmarshal decodes arbitrary running-state bytes (as Redis
// returns them). A state is refused with an error or is one the engine can
// use: its unique values in order and each carried by a record, and it
// encodes to bytes that decode to the same state.
func FuzzStateUnmarshal(f *testing.F) {
	states := []State{
		{},
		{agg: 1, records: 3, qty: u128{0, 4_500_000_000}, Seq: 17},
		{agg: 2, records: 2, qty: u128{1, 2}, atMax: 2},
		{agg: 5, records: 1, qty: u128{0, 1}, latest: -5, latestH: 9},
		{agg: 4, records: 3, qty: u128{0, 2 * qtyOne}, uniques: []uniqueValue{{1, 2, 1}, {1, 3, 2}}},
		{agg: 1, records: 1, charged: u128{7, 8}},
	}
	for _, s := range states {
		b, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1, 4, 0x80, 0x04, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1}) // unsorted
	f.Add([]byte{1, 9, 0})
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s State
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		for i, u := range s.uniques {
			if u.n == 0 || i > 0 && !s.uniques[i-1].before(u) {
				t.Fatalf("%x: unique values %+v", b, s.uniques)
			}
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("%x: decoded %+v does not encode: %v", b, s, err)
		}
		var again State
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%x: re-encoded %x does not decode: %v", b, enc, err)
		}
		if len(s.uniques) == 0 && len(again.uniques) == 0 {
			s.uniques, again.uniques = nil, nil
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("%x: %+v re-encodes to %x, which decodes to %+v", b, s, enc, again)
		}
	})
}

// FuzzParsePeriod: a period that parses is written back exactly.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"2026-11", "2026-13", "0000-01", "9999-12", "2026-1", "+026-01", "2026-011"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePeriod(s); err == nil && p.String() != s {
			t.Fatalf("%q parses as %s", s, p)
		}
	})
}
