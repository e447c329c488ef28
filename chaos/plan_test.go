package chaos

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The schedule is a function of the seed, with exactly perKind faults of
// every kind.
func TestPlanIsSeeded(t *testing.T) {
	a, b := Plan(42, 3, 9, time.Second), Plan(42, 3, 9, time.Second)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two plans")
	}
	if reflect.DeepEqual(a, Plan(43, 3, 9, time.Second)) {
		t.Fatal("two seeds gave the same plan")
	}
	per := map[string]int{}
	for _, f := range a {
		per[f.Kind]++
		if f.Target < 0 || f.Target >= 9 || f.Pause < 0 || f.Pause >= time.Second || f.Downtime < 0 || f.Downtime >= 3*time.Second {
			t.Fatalf("fault out of range: %+v", f)
		}
	}
	for _, k := range FaultKinds {
		if per[k] != 3 {
			t.Errorf("%s: %d faults, want 3", k, per[k])
		}
	}
}

// The workload is a function of the seed, and its shares are about right.
func TestGeneratorIsSeeded(t *testing.T) {
	g1, g2 := newGenerator(TieredTenant, 7), newGenerator(TieredTenant, 7)
	counts := map[recordKind]int{}
	resends, n := 0, 0
	for range 200 {
		b1, b2 := g1.next(), g2.next()
		if string(b1.Data) != string(b2.Data) {
			t.Fatal("the same seed gave two workloads")
		}
		for _, r := range b1.records {
			counts[r.kind]++
			n++
		}
		resends += b1.resends
	}
	share := func(k int) float64 { return float64(k) / float64(n) }
	if s := share(resends); s < 0.04 || s > 0.06 {
		t.Errorf("re-sends %.3f, want about 0.05", s)
	}
	if s := share(counts[invalid]); s < 0.01 || s > 0.02 {
		t.Errorf("invalid %.3f, want about 0.015", s)
	}
	if s := share(counts[unratable]); s < 0.002 || s > 0.008 {
		t.Errorf("unratable %.3f, want about 0.005", s)
	}
}

// The checker finds what it is there to find: a lost record, one stored
// that was never acknowledged, a wrong customer-month, a missing duplicate
// flag and a missing unrated row.
func TestCompareFindsDifferences(t *testing.T) {
	eng, err := compileTiered()
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(TieredTenant, 1)
	var acked []*record
	for range 20 {
		for _, r := range g.next().records {
			if r.kind != invalid {
				acked = append(acked, r)
			}
		}
	}
	exp, err := expect(TieredTenant, acked, 0, 0, nil, eng)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Lines == 0 || exp.Unrated == 0 {
		t.Fatalf("workload too small: %d lines, %d unrated", exp.Lines, exp.Unrated)
	}
	exact := func() Got {
		got := Got{RawCopies: map[string]int{}, Records: map[string]int{}, Totals: map[string]decimal.Decimal{},
			Lines: exp.Lines, Unrated: exp.Unrated}
		for id := range exp.Records {
			got.RawCopies[id], got.Records[id] = 1, 1
		}
		for k, v := range exp.Totals {
			got.Totals[k] = v
		}
		return got
	}
	if r := compare(TieredTenant, exp, exact()); !r.OK() {
		t.Fatalf("exact state reported wrong: %v", r.Problems)
	}
	var anyID, anyMonth string
	for id := range exp.Records {
		anyID = id
		break
	}
	for k := range exp.Totals {
		anyMonth = k
		break
	}
	for name, tc := range map[string]struct {
		change func(*Got)
		want   string
	}{
		"lost":            {func(g *Got) { delete(g.Records, anyID) }, "not in usage_records"},
		"stray":           {func(g *Got) { g.Records["x"] = 1 }, "not acknowledged"},
		"wrong month":     {func(g *Got) { g.Totals[anyMonth] = g.Totals[anyMonth].Add(decimal.New(1, 0)) }, "customer-periods wrong"},
		"unflagged copy":  {func(g *Got) { g.RawCopies[anyID] = 2 }, "duplicates flagged, want 1"},
		"unrated missing": {func(g *Got) { g.Unrated-- }, "records unrated"},
	} {
		got := exact()
		tc.change(&got)
		r := compare(TieredTenant, exp, got)
		if r.OK() || !strings.Contains(strings.Join(r.Problems, "; "), tc.want) {
			t.Errorf("%s: problems %v, want one saying %q", name, r.Problems, tc.want)
		}
	}
}
