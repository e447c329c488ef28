package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// testPrices is the demo price list (tenant loadgen, JPY half_up) plus a USD
// tenant that rounds up, so both rounding paths are exercised.
func testPrices(t *testing.T) *pricelist.List {
	t.Helper()
	pl, err := pricelist.New(pricelist.File{Tenants: map[string]pricelist.TenantFile{
		"loadgen": {Currency: "JPY", Rounding: "half_up", TimeZone: "Asia/Tokyo", AnyCustomer: true,
			Prices: map[string]string{"api_calls": "0.05", "storage_gb_hours": "1.2", "transfer_gb": "9.8", "sms": "3"}},
		"lg-usd": {Currency: "USD", Rounding: "up", TimeZone: "America/New_York", AnyCustomer: true,
			Prices: map[string]string{"api_calls": "0.00042", "storage_gb_hours": "0.0123", "transfer_gb": "0.087", "sms": "0.0075"}},
		"no-sms": {Currency: "JPY", Rounding: "half_up", TimeZone: "UTC", AnyCustomer: true,
			Prices: map[string]string{"api_calls": "0.05", "storage_gb_hours": "1.2", "transfer_gb": "9.8"}},
		"closed": {Currency: "JPY", Rounding: "half_up", TimeZone: "UTC", Customers: []string{"someone"},
			Prices: map[string]string{"api_calls": "0.05", "storage_gb_hours": "1.2", "transfer_gb": "9.8", "sms": "3"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

var (
	testFrom = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	testTo   = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

func testOptions(mod func(*Options)) Options {
	o := Options{RunID: "lgtest-1", Tenant: "loadgen", Events: 1000, Batch: 100, Customers: 50,
		DuplicateShare: 0.05, Seed: 42, From: testFrom, To: testTo}
	if mod != nil {
		mod(&o)
	}
	return o
}

// drain runs a generator to the end and returns its batches.
func drain(t *testing.T, g *Generator) []Batch {
	t.Helper()
	var out []Batch
	for i := 0; !g.Done(); i++ {
		if i > 1_000_000 {
			t.Fatal("generator does not end")
		}
		b, err := g.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.Records() == 0 {
			t.Fatal("empty batch before Done")
		}
		if got := bytes.Count(b.Body, []byte("\n")); got != b.Records() {
			t.Fatalf("batch has %d lines, says %d records", got, b.Records())
		}
		out = append(out, b)
	}
	return out
}

type wireRecord struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Element  string `json:"element"`
	Quantity string `json:"quantity"`
	Time     string `json:"time"`
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestDuplicateShare(t *testing.T) {
	for _, tc := range []struct {
		name          string
		events, batch int
		share         float64
		wantDups      int
	}{
		{"default share", 1000, 100, 0.05, 50},
		{"no duplicates", 5000, 333, 0, 0},
		{"all in one batch then duplicates", 1000, 1000, 0.1, 100},
		{"one event resent once", 1, 1, 1, 1},
		{"share of one", 10, 3, 1, 10},
		{"rounds", 33, 7, 0.05, 2},
		{"batch larger than run", 20, 1000, 0.5, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGenerator(testOptions(func(o *Options) {
				o.Events, o.Batch, o.DuplicateShare = tc.events, tc.batch, tc.share
			}), testPrices(t))
			if err != nil {
				t.Fatal(err)
			}
			if g.DuplicateTarget() != tc.wantDups {
				t.Fatalf("duplicate target %d, want %d", g.DuplicateTarget(), tc.wantDups)
			}
			firstLine := map[string]string{} // id → the line that first sent it
			firstBatch := map[string]int{}
			var uniques, dups int
			for bi, b := range drain(t, g) {
				if b.Records() > tc.batch {
					t.Fatalf("batch %d has %d records, limit %d", bi, b.Records(), tc.batch)
				}
				var bu, bd int
				for _, ln := range lines(b.Body) {
					var r wireRecord
					if err := json.Unmarshal([]byte(ln), &r); err != nil {
						t.Fatalf("line %q: %v", ln, err)
					}
					if !strings.HasPrefix(r.ID, "lgtest-1-") || !strings.HasPrefix(r.Customer, "lgtest-1-") {
						t.Fatalf("id %q / customer %q without the run prefix", r.ID, r.Customer)
					}
					if prev, ok := firstLine[r.ID]; ok {
						bd++
						if prev != ln {
							t.Fatalf("re-sent %s differs:\n%s\n%s", r.ID, prev, ln)
						}
						if firstBatch[r.ID] >= bi {
							t.Fatalf("%s re-sent in batch %d, first sent in batch %d", r.ID, bi, firstBatch[r.ID])
						}
						continue
					}
					bu++
					firstLine[r.ID], firstBatch[r.ID] = ln, bi
				}
				if bu != b.Unique || bd != b.Duplicates {
					t.Fatalf("batch %d: %d unique %d duplicates, says %d and %d", bi, bu, bd, b.Unique, b.Duplicates)
				}
				uniques += bu
				dups += bd
			}
			if uniques != tc.events || dups != tc.wantDups {
				t.Fatalf("sent %d unique and %d duplicates, want %d and %d", uniques, dups, tc.events, tc.wantDups)
			}
			exp := g.Expected()
			if exp.Lines != uint64(tc.events) || exp.Duplicates != uint64(tc.wantDups) {
				t.Fatalf("expected lines %d duplicates %d, want %d and %d", exp.Lines, exp.Duplicates, tc.events, tc.wantDups)
			}
		})
	}
}

func TestIDsUniquePerRun(t *testing.T) {
	pl := testPrices(t)
	ids := map[string]string{}
	for _, run := range []string{"lga-1", "lga-2", "lga-10"} {
		g, err := NewGenerator(testOptions(func(o *Options) { o.RunID, o.DuplicateShare = run, 0 }), pl)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range drain(t, g) {
			for _, ln := range lines(b.Body) {
				var r wireRecord
				if err := json.Unmarshal([]byte(ln), &r); err != nil {
					t.Fatal(err)
				}
				if other, ok := ids[r.ID]; ok {
					t.Fatalf("id %s sent by runs %s and %s", r.ID, other, run)
				}
				ids[r.ID] = run
				// The check reads customer LIKE '<run>-%': no other run may match.
				for _, o := range []string{"lga-1", "lga-2", "lga-10"} {
					if o != run && strings.HasPrefix(r.Customer, o+"-") {
						t.Fatalf("customer %s of run %s matches run %s", r.Customer, run, o)
					}
				}
			}
		}
	}
	if len(ids) != 3000 {
		t.Fatalf("%d ids", len(ids))
	}
}

// TestExpectedTotals decodes the bodies as ingest would, rates every first
// sending with the real rater and checks the generator's totals to the last
// digit.
func TestExpectedTotals(t *testing.T) {
	pl := testPrices(t)
	for _, tc := range []struct {
		name   string
		tenant string
		seed   uint64
	}{
		{"JPY half_up", "loadgen", 1},
		{"JPY half_up other seed", "loadgen", 987654321},
		{"USD up", "lg-usd", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGenerator(testOptions(func(o *Options) {
				o.Tenant, o.Seed, o.Events, o.Customers, o.DuplicateShare = tc.tenant, tc.seed, 3000, 200, 0.2
			}), pl)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]decimal.Decimal{}
			seen := map[string]bool{}
			var total decimal.Decimal
			for _, b := range drain(t, g) {
				for _, ln := range lines(b.Body) {
					var r wireRecord
					if err := json.Unmarshal([]byte(ln), &r); err != nil {
						t.Fatal(err)
					}
					if seen[r.ID] {
						continue
					}
					seen[r.ID] = true
					q, err := decimal.NewFromString(r.Quantity)
					if err != nil {
						t.Fatal(err)
					}
					at, err := time.Parse(time.RFC3339Nano, r.Time)
					if err != nil {
						t.Fatal(err)
					}
					ev := schemas.UsageEvent{Tenant: tc.tenant, ID: r.ID, Customer: r.Customer, Element: r.Element, Quantity: q, Time: at.UTC()}
					out := pl.Rate(&ev, time.Now())
					if out.Line == nil {
						t.Fatalf("%s unrated: %s", r.ID, out.Unrated.Reason)
					}
					want[r.Customer] = want[r.Customer].Add(out.Line.Amount)
					total = total.Add(out.Line.Amount)
				}
			}
			pr, err := g.Probe(nil, testTo)
			if err != nil {
				t.Fatal(err)
			}
			var r wireRecord
			if err := json.Unmarshal(pr.Body, &r); err != nil {
				t.Fatal(err)
			}
			ev := schemas.UsageEvent{Tenant: tc.tenant, ID: r.ID, Customer: r.Customer, Element: r.Element,
				Quantity: decimal.RequireFromString(r.Quantity), Time: testTo}
			out := pl.Rate(&ev, time.Now())
			want[r.Customer] = want[r.Customer].Add(out.Line.Amount)
			total = total.Add(out.Line.Amount)
			if pr.Period != out.Line.Period || pr.Customer != r.Customer || pr.ID != r.ID {
				t.Fatalf("probe %+v, line period %s", pr, out.Line.Period)
			}

			exp := g.Expected()
			if exp.Lines != uint64(len(seen)+1) {
				t.Fatalf("expected lines %d, want %d", exp.Lines, len(seen)+1)
			}
			if len(exp.PerCustomer) != len(want) {
				t.Fatalf("expected %d customers, want %d", len(exp.PerCustomer), len(want))
			}
			for c, w := range want {
				if got, ok := exp.PerCustomer[c]; !ok || !got.Equal(w) {
					t.Fatalf("customer %s: generator expects %s, rater gives %s", c, got, w)
				}
			}
			if !exp.Total.Equal(total) {
				t.Fatalf("total %s, want %s", exp.Total, total)
			}
		})
	}
}

func TestSkewDeterministic(t *testing.T) {
	pl := testPrices(t)
	body := func(seed uint64) ([]byte, map[string]int) {
		g, err := NewGenerator(testOptions(func(o *Options) {
			o.Seed, o.Events, o.Customers, o.Batch = seed, 20000, 1000, 1000
		}), pl)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		perCust := map[string]int{}
		for _, b := range drain(t, g) {
			all = append(all, b.Body...)
		}
		seen := map[string]bool{}
		for _, ln := range lines(all) {
			var r wireRecord
			_ = json.Unmarshal([]byte(ln), &r)
			if !seen[r.ID] {
				seen[r.ID] = true
				perCust[r.Customer]++
			}
		}
		return all, perCust
	}
	a, counts := body(42)
	b, _ := body(42)
	c, _ := body(43)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different traffic")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same traffic")
	}

	for _, tc := range []struct {
		name     string
		top      int     // heaviest customers
		minShare float64 // of the events they must carry at least
	}{
		{"top 1%", 10, 0.15},
		{"top 10%", 100, 0.40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := make([]int, 0, len(counts))
			total := 0
			for _, v := range counts {
				n = append(n, v)
				total += v
			}
			slices.Sort(n)
			slices.Reverse(n)
			sum := 0
			for _, v := range n[:min(tc.top, len(n))] {
				sum += v
			}
			if share := float64(sum) / float64(total); share < tc.minShare {
				t.Fatalf("top %d customers carry %.3f of the events, want ≥ %.2f", tc.top, share, tc.minShare)
			}
		})
	}
	if counts["lgtest-1-c0001"] <= counts["lgtest-1-c0500"] {
		t.Fatalf("customer 1 (%d events) not heavier than customer 500 (%d)", counts["lgtest-1-c0001"], counts["lgtest-1-c0500"])
	}
}

func TestEventMix(t *testing.T) {
	g, err := NewGenerator(testOptions(func(o *Options) { o.Events = 5000 }), testPrices(t))
	if err != nil {
		t.Fatal(err)
	}
	elements := map[string]int{}
	var ints, decimals, maxPlaces int
	for _, b := range drain(t, g) {
		for _, ln := range lines(b.Body) {
			var r wireRecord
			if err := json.Unmarshal([]byte(ln), &r); err != nil {
				t.Fatal(err)
			}
			elements[r.Element]++
			if i := strings.IndexByte(r.Quantity, '.'); i >= 0 {
				decimals++
				maxPlaces = max(maxPlaces, len(r.Quantity)-i-1)
			} else {
				ints++
			}
			at, err := time.Parse(time.RFC3339, r.Time)
			if err != nil || at.Before(testFrom) || !at.Before(testTo) {
				t.Fatalf("time %s outside [%s, %s)", r.Time, testFrom, testTo)
			}
		}
	}
	for _, el := range Elements {
		if elements[el] < 250 {
			t.Fatalf("element %s: %d records of 5000+", el, elements[el])
		}
	}
	if ints < 1000 || decimals < 1000 || maxPlaces != 6 {
		t.Fatalf("%d integer and %d decimal quantities, up to %d places", ints, decimals, maxPlaces)
	}
}

func TestAppendQuantity(t *testing.T) {
	for _, tc := range []struct {
		m     int64
		scale int32
		want  string
	}{
		{0, 0, "0"},
		{7, 0, "7"},
		{12345, 3, "12.345"},
		{12300, 3, "12.3"},
		{12000, 3, "12"},
		{1, 6, "0.000001"},
		{1234, 6, "0.001234"},
		{10_000_000, 6, "10"},
		{5, 1, "0.5"},
		{100001, 6, "0.100001"},
	} {
		got := string(appendQuantity(nil, tc.m, tc.scale))
		if got != tc.want {
			t.Errorf("appendQuantity(%d, %d) = %q, want %q", tc.m, tc.scale, got, tc.want)
		}
		if d := decimal.RequireFromString(got); !d.Equal(decimal.New(tc.m, -tc.scale)) {
			t.Errorf("%q parses to %s", got, d)
		}
	}
}

func TestNewGeneratorRejects(t *testing.T) {
	pl := testPrices(t)
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"element without price", func(o *Options) { o.Tenant = "no-sms" }, "cannot rate sms"},
		{"tenant with listed customers only", func(o *Options) { o.Tenant = "closed" }, "cannot rate"},
		{"unknown tenant", func(o *Options) { o.Tenant = "nobody" }, "cannot rate"},
		{"run id with LIKE wildcard", func(o *Options) { o.RunID = "lg_1" }, "run id"},
		{"no events", func(o *Options) { o.Events = 0 }, "events"},
		{"share above one", func(o *Options) { o.DuplicateShare = 1.5 }, "duplicate share"},
		{"share NaN", func(o *Options) { o.DuplicateShare = math.NaN() }, "duplicate share"},
		{"empty window", func(o *Options) { o.To = o.From }, "window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGenerator(testOptions(tc.mod), pl)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEventWindow(t *testing.T) {
	for _, tc := range []struct {
		now, from time.Time
	}{
		{time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 1, 0, 20, 0, 0, time.UTC), time.Date(2026, 11, 30, 23, 20, 0, 0, time.UTC)},
	} {
		from, to := EventWindow(tc.now)
		if !from.Equal(tc.from) || !to.Equal(tc.now.Truncate(time.Second)) {
			t.Errorf("EventWindow(%s) = %s, %s", tc.now, from, to)
		}
	}
}
