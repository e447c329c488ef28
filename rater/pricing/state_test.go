package pricing

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

func TestStateBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		s := State{agg: uint8(rng.IntN(6)), records: rng.Uint64() >> uint(rng.IntN(64)),
			qty: u128{rng.Uint64() >> uint(rng.IntN(64)), rng.Uint64()}, atMax: rng.Uint64N(10),
			latest: rng.Int64() - rng.Int64(), latestH: rng.Uint64(), charged: u128{rng.Uint64N(3), rng.Uint64()}, Seq: rng.Uint64()}
		for j := rng.IntN(4); j > 0; j-- {
			s.uniques = append(s.uniques, uniqueValue{rng.Uint64(), rng.Uint64(), rng.Uint64N(100) + 1})
		}
		slices.SortFunc(s.uniques, func(a, b uniqueValue) int { // in order, as the engine keeps them
			return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo))
		})
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if len(s.uniques) == 0 {
			back.uniques, s.uniques = nil, nil
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, s)
		}
		for cut := 0; cut < len(b); cut++ {
			if err := new(State).UnmarshalBinary(b[:cut]); err == nil {
				t.Fatalf("truncated state (%d of %d bytes) accepted", cut, len(b))
			}
		}
	}
	small := State{agg: 1, records: 3, qty: u128{0, 3 * qtyOne}, Seq: 1234}
	b, _ := small.MarshalBinary()
	if len(b) > 12 {
		t.Errorf("a sum state takes %d bytes, want at most 12", len(b))
	}
}

// aggregationCase applies records, removes one and compares with rating the
// records without it from scratch.
func TestRemove(t *testing.T) {
	type rec struct {
		qty, user string
		at        int // seconds after the start
	}
	tests := []struct {
		name   string
		agg    catalog.Aggregation
		rt     catalog.RateTableVersion
		recs   []rec
		remove int
		err    error
	}{
		{"sum across a tier boundary", catalog.AggSum, graduated([3]string{"10", "1", "0"}, [3]string{"", "0.5", "3"}), []rec{{"6", "", 0}, {"7", "", 1}, {"2", "", 2}}, 1, nil},
		{"count", catalog.AggCount, volume([3]string{"2", "5", "0"}, [3]string{"", "1", "0"}), []rec{{"1", "", 0}, {"1", "", 1}, {"1", "", 2}}, 0, nil},
		{"unique count, value still present", catalog.AggUniqueCount, perUnit("7"), []rec{{"1", "a", 0}, {"1", "b", 1}, {"1", "a", 2}}, 2, nil},
		{"unique count, value gone", catalog.AggUniqueCount, perUnit("7"), []rec{{"1", "a", 0}, {"1", "b", 1}, {"1", "a", 2}}, 1, nil},
		{"max, below the maximum", catalog.AggMax, perUnit("3"), []rec{{"5", "", 0}, {"9", "", 1}, {"2", "", 2}}, 2, nil},
		{"max, one of two at the maximum", catalog.AggMax, perUnit("3"), []rec{{"9", "", 0}, {"9", "", 1}, {"2", "", 2}}, 0, nil},
		{"max, the maximum", catalog.AggMax, perUnit("3"), []rec{{"5", "", 0}, {"9", "", 1}, {"2", "", 2}}, 1, ErrNeedsRecompute},
		{"max, the only record", catalog.AggMax, perUnit("3"), []rec{{"5", "", 0}}, 0, nil},
		{"latest, an older record", catalog.AggLatest, perUnit("3"), []rec{{"5", "", 2}, {"9", "", 1}, {"2", "", 0}}, 2, nil},
		{"latest, the latest record", catalog.AggLatest, perUnit("3"), []rec{{"5", "", 2}, {"9", "", 1}}, 0, ErrNeedsRecompute},
		{"percentage without allowance", catalog.AggSum, catalog.RateTableVersion{Model: catalog.ModelPercentage,
			Percentage: &catalog.Percentage{Rate: dec("0.03"), FixedFee: dec("5"), MinPerTransaction: decp("6")}}, []rec{{"100", "", 0}, {"10", "", 1}}, 1, nil},
		{"percentage with free transactions", catalog.AggSum, catalog.RateTableVersion{Model: catalog.ModelPercentage,
			Percentage: &catalog.Percentage{Rate: dec("0.03"), FixedFee: dec("5"), FreeTransactions: 1}}, []rec{{"100", "", 0}, {"10", "", 1}}, 0, ErrNeedsRecompute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := oneFee(tt.rt, "JPY", withElement(func(v *catalog.ElementVersion) {
				v.Aggregation = tt.agg
				if tt.agg == catalog.AggUniqueCount {
					v.UniqueAttribute = "user"
				}
			}))
			e := compile(t, cat)
			evs := make([]schemas.UsageEvent, len(tt.recs))
			for i, r := range tt.recs {
				evs[i] = event(fmt.Sprintf("r%d", i), march.Add(time.Duration(r.at)*time.Second), r.qty, "user", r.user)
			}
			var st State
			var sum int64
			var charge Charge
			for i := range evs {
				cs, err := e.Resolve(&evs[i], nil)
				if err != nil {
					t.Fatal(err)
				}
				charge = cs[0]
				l, err := charge.Apply(&st, &evs[i])
				if err != nil {
					t.Fatal(err)
				}
				sum += l.Amount
			}
			before := cloneState(&st)
			l, err := charge.Remove(&st, &evs[tt.remove])
			if !errors.Is(err, tt.err) {
				t.Fatalf("Remove: %v, want %v", err, tt.err)
			}
			if err != nil {
				if !reflect.DeepEqual(st, before) {
					t.Error("state changed on ErrNeedsRecompute")
				}
				return
			}
			sum += l.Amount
			rest := append(append([]schemas.UsageEvent(nil), evs[:tt.remove]...), evs[tt.remove+1:]...)
			want := e.RatePeriod(rest).Totals()[charge.Key]
			if sum != want {
				t.Errorf("after removal the lines sum to %d, re-rating without the record gives %d", sum, want)
			}
			if total, _ := charge.Total(&st); total != want {
				t.Errorf("state total %d after removal, want %d", total, want)
			}
			// Reinstating the record brings the total back.
			l2, err := charge.Apply(&st, &evs[tt.remove])
			if err != nil {
				t.Fatal(err)
			}
			if sum+l2.Amount != e.RatePeriod(append(rest, evs[tt.remove])).Totals()[charge.Key] {
				t.Errorf("reinstated total differs")
			}
		})
	}
}

func TestUniqueCountAndLatest(t *testing.T) {
	uniq := withElement(func(v *catalog.ElementVersion) { v.Aggregation, v.UniqueAttribute = catalog.AggUniqueCount, "user" })
	e := compile(t, oneFee(perUnit("10"), "JPY", uniq))
	var evs []schemas.UsageEvent
	for i, u := range []string{"a", "b", "a", "c", "b"} {
		evs = append(evs, event(fmt.Sprintf("u%d", i), march.Add(time.Duration(i)*time.Second), "99", "user", u))
	}
	if got := e.RatePeriod(evs).CustomerTotals(); len(got) != 1 || sumOf(got) != 30 {
		t.Errorf("unique users charged %v, want 30 (3 users)", got)
	}

	latest := withElement(func(v *catalog.ElementVersion) { v.Aggregation = catalog.AggLatest })
	e = compile(t, oneFee(perUnit("1"), "JPY", latest))
	evs = []schemas.UsageEvent{
		event("l1", march.Add(3*time.Second), "30"),
		event("l2", march.Add(1*time.Second), "10"),
		event("l3", march.Add(2*time.Second), "20"),
	}
	if got := sumOf(e.RatePeriod(evs).CustomerTotals()); got != 30 {
		t.Errorf("latest by event time = %d, want 30 (the record at +3s)", got)
	}
}

func sumOf[K comparable](m map[K]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

func TestAggregationChangedInsidePeriod(t *testing.T) {
	c := oneFee(perUnit("1"), "JPY")
	mid := time.Date(2026, 3, 15, 0, 0, 0, 0, tokyo)
	c.Elements[0].Versions = []catalog.ElementVersion{
		{Validity: catalog.Validity{ValidFrom: since.ValidFrom, ValidTo: &mid}, Unit: "u", Aggregation: catalog.AggSum},
		{Validity: catalog.Validity{ValidFrom: mid}, Unit: "u", Aggregation: catalog.AggMax},
	}
	e := compile(t, c)
	s := newStream(e)
	ev := event("a", time.Date(2026, 3, 10, 0, 0, 0, 0, tokyo), "5")
	if _, err := s.rate(&ev); err != nil {
		t.Fatal(err)
	}
	ev = event("b", time.Date(2026, 3, 20, 0, 0, 0, 0, tokyo), "5")
	if _, err := s.rate(&ev); reasonOf(err) != schemas.ReasonAggregationChanged {
		t.Fatalf("err = %v, want aggregation_changed", err)
	}
	// In the next period the new aggregation starts cleanly.
	ev = event("c", time.Date(2026, 4, 2, 0, 0, 0, 0, tokyo), "5")
	if _, err := s.rate(&ev); err != nil {
		t.Fatal(err)
	}
}
