package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// fakePipeline is ingest, dedupe, rater and ClickHouse in memory: an
// http.RoundTripper that stores what it is sent and a Store that reads it.
// No network is involved.
type fakePipeline struct {
	t      *testing.T
	prices *pricelist.List

	mu       sync.Mutex
	seen     map[string]bool // tenant/id claimed
	lines    map[string]fakeLine
	dups     int
	requests int
	fail503  int                  // answer this many requests 503 after storing half of each
	reject   string               // answer records with this id rejected
	lose     func(id string) bool // lines the pipeline loses
}

type fakeLine struct {
	tenant, customer, period, eventID string
	amount                            decimal.Decimal
}

func newFakePipeline(t *testing.T) *fakePipeline {
	return &fakePipeline{t: t, prices: testPrices(t), seen: map[string]bool{}, lines: map[string]fakeLine{}}
}

func (f *fakePipeline) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/usage" ||
		req.Header.Get("Content-Type") != "application/x-ndjson" {
		return answer(http.StatusBadRequest, nil, `{"code":"bad request"}`), nil
	}
	tenant := req.Header.Get("Kakin-Tenant")
	recs := lines(body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.fail503 > 0 {
		f.fail503--
		f.store(tenant, recs[:len(recs)/2]) // Kafka took part of the batch before failing
		return answer(http.StatusServiceUnavailable, http.Header{"Retry-After": {"0"}}, `{"code":"storage_unavailable"}`), nil
	}
	var results []fakeResult
	accepted, rejected := 0, 0
	var keep []string
	for i, ln := range recs {
		var r wireRecord
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			f.t.Errorf("record %q: %v", ln, err)
		}
		if r.ID == f.reject {
			rejected++
			results = append(results, fakeResult{Index: i, ID: r.ID, Status: "rejected",
				Errors: []map[string]string{{"field": "quantity", "reason": "must not be negative"}}})
			continue
		}
		accepted++
		keep = append(keep, ln)
		results = append(results, fakeResult{Index: i, ID: r.ID, Status: "accepted"})
	}
	f.store(tenant, keep)
	out, _ := json.Marshal(map[string]any{"accepted": accepted, "rejected": rejected, "results": results})
	status := http.StatusAccepted
	if accepted == 0 {
		status = http.StatusUnprocessableEntity
	}
	return answer(status, nil, string(out)), nil
}

type fakeResult struct {
	Index  int                 `json:"index"`
	ID     string              `json:"id"`
	Status string              `json:"status"`
	Errors []map[string]string `json:"errors,omitempty"`
}

// store dedupes by (tenant, id) and rates first sightings. Caller holds mu.
func (f *fakePipeline) store(tenant string, recs []string) {
	for _, ln := range recs {
		var r wireRecord
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			f.t.Errorf("record %q: %v", ln, err)
			continue
		}
		if f.seen[tenant+"/"+r.ID] {
			f.dups++
			continue
		}
		f.seen[tenant+"/"+r.ID] = true
		if f.lose != nil && f.lose(r.ID) {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, r.Time)
		ev := schemas.UsageEvent{Tenant: tenant, ID: r.ID, Customer: r.Customer, Element: r.Element,
			Quantity: decimal.RequireFromString(r.Quantity), Time: at.UTC()}
		out := f.prices.Rate(&ev, time.Now())
		if out.Line == nil {
			f.t.Errorf("%s unrated: %s", r.ID, out.Unrated.Reason)
			continue
		}
		f.lines[out.Line.LineID] = fakeLine{tenant: tenant, customer: r.Customer, period: out.Line.Period,
			eventID: r.ID, amount: out.Line.Amount}
	}
}

func answer(status int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func (f *fakePipeline) ProbeIDs(_ context.Context, tenant, customer, period string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, l := range f.lines {
		if l.tenant == tenant && l.customer == customer && l.period == period {
			ids = append(ids, l.eventID)
		}
	}
	return ids, nil
}

// StoredLines is Lines: the fake stores each line once.
func (f *fakePipeline) StoredLines(ctx context.Context, tenant, prefix string) (uint64, error) {
	return f.Lines(ctx, tenant, prefix)
}

func (f *fakePipeline) Lines(_ context.Context, tenant, prefix string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, l := range f.lines {
		if l.tenant == tenant && strings.HasPrefix(l.customer, prefix) {
			n++
		}
	}
	return n, nil
}

func (f *fakePipeline) CustomerTotals(_ context.Context, tenant, prefix string) (map[string]decimal.Decimal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]decimal.Decimal{}
	for _, l := range f.lines {
		if l.tenant == tenant && strings.HasPrefix(l.customer, prefix) {
			out[l.customer] = out[l.customer].Add(l.amount)
		}
	}
	return out, nil
}

func (f *fakePipeline) Duplicates(context.Context, string, string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(f.dups), nil
}

func (f *fakePipeline) Unrated(context.Context, string, string) (uint64, error) { return 0, nil }

func testConfig(f *fakePipeline, mod func(*Config)) Config {
	c := Config{URL: "http://ingest.invalid/", Tenant: "loadgen", Events: 2000, Batch: 100, Concurrency: 4,
		Customers: 50, DuplicateShare: 0.1, Seed: 5, RunID: "lgrun-test", Timeout: 5 * time.Second,
		PriceList: f.prices, Store: f, HTTPClient: &http.Client{Transport: f},
		ProbeInterval: 2 * time.Millisecond, PollInterval: time.Millisecond, VerifyInterval: 2 * time.Millisecond,
		sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }}
	if mod != nil {
		mod(&c)
	}
	return c
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(*fakePipeline, *Config)
		wantErr   string // "" = exact totals
		wantCheck string
	}{
		{name: "exact", wantCheck: "=="},
		{name: "no duplicates, one customer", setup: func(_ *fakePipeline, c *Config) { c.DuplicateShare, c.Customers = 0, 1 }, wantCheck: "=="},
		{name: "paced", setup: func(_ *fakePipeline, c *Config) { c.Rate = 20000; c.Events = 1000 }, wantCheck: "=="},
		{name: "503 after partial storage relaxes the duplicate check", setup: func(f *fakePipeline, _ *Config) { f.fail503 = 3 }, wantCheck: ">="},
		{name: "lost line", setup: func(f *fakePipeline, c *Config) {
			f.lose = func(id string) bool { return id == "lgrun-test-e17" }
			c.Timeout = 100 * time.Millisecond
		}, wantErr: "1 of 51 customers differ (lgrun-test-c0001 expected"},
		{name: "rejected record", setup: func(f *fakePipeline, _ *Config) { f.reject = "lgrun-test-e5" }, wantErr: "1 records were rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePipeline(t)
			cfg := testConfig(f, nil)
			if tc.setup != nil {
				tc.setup(f, &cfg)
			}
			res, err := Run(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if res == nil {
					t.Fatal("no result with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verification
			if !v.Exact || v.DuplicateCheck != tc.wantCheck || v.DrainSeconds == nil {
				t.Fatalf("verification %+v", v)
			}
			wantDups := int(float64(cfg.Events)*cfg.DuplicateShare + 0.5)
			if res.DuplicatesSent != wantDups || res.Accepted != cfg.Events+wantDups || res.Rejected != 0 {
				t.Fatalf("sent %d duplicates, %d accepted, %d rejected", res.DuplicatesSent, res.Accepted, res.Rejected)
			}
			if v.ExpectedLines != uint64(cfg.Events+res.Probes) || v.GotLines != v.ExpectedLines {
				t.Fatalf("lines %d / %d with %d probes", v.GotLines, v.ExpectedLines, res.Probes)
			}
			if res.Probes < 3 || res.IngestToQueryable.Count != res.Probes || res.ProbesUnseen != 0 {
				t.Fatalf("%d probes, %d seen, %d unseen", res.Probes, res.IngestToQueryable.Count, res.ProbesUnseen)
			}
			// The 503s may hit batches or probes; either relaxes the check.
			if tc.wantCheck == ">=" && (res.Retries503 != 3 || v.GotDuplicates < v.ExpectedDuplicates) {
				t.Fatalf("%d retries, %d duplicates stored for %d sent", res.Retries503, v.GotDuplicates, v.ExpectedDuplicates)
			}
			if cfg.Rate > 0 {
				// 1100 records at 20000/s: the last batch leaves after ≥ 1000/20000 s.
				if res.SendSeconds < 0.045 {
					t.Fatalf("paced run took %.3fs", res.SendSeconds)
				}
			}
			var text bytes.Buffer
			if err := res.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"totals: exact", "accepted", "p50", "p99", "resolution: 1ms poll interval", "drain"} {
				if !strings.Contains(text.String(), want) {
					t.Fatalf("report lacks %q:\n%s", want, text.String())
				}
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRunNamesCustomersThatDiffer has the pipeline rate one customer's line
// differently and checks that the error names that customer with both totals.
func TestRunNamesCustomersThatDiffer(t *testing.T) {
	f := newFakePipeline(t)
	cfg := testConfig(f, func(c *Config) { c.DuplicateShare = 0 })
	// After sending, corrupt one stored amount by one yen.
	store := &corruptingStore{fakePipeline: f}
	cfg.Store = store
	res, err := Run(context.Background(), cfg)
	if err == nil {
		t.Fatal("corrupted totals passed")
	}
	want := fmt.Sprintf("%s expected %s got %s", store.customer, store.was, store.was.Add(decimal.New(1, 0)))
	if !strings.Contains(err.Error(), "1 of") || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
	if len(res.Verification.Mismatches) != 1 || res.Verification.Mismatches[0].Customer != store.customer {
		t.Fatalf("mismatches %+v", res.Verification.Mismatches)
	}
}

type corruptingStore struct {
	*fakePipeline
	customer string
	was      decimal.Decimal
}

func (c *corruptingStore) CustomerTotals(ctx context.Context, tenant, prefix string) (map[string]decimal.Decimal, error) {
	got, err := c.fakePipeline.CustomerTotals(ctx, tenant, prefix)
	c.customer = "lgrun-test-c0003"
	c.was = got[c.customer]
	got[c.customer] = c.was.Add(decimal.New(1, 0))
	return got, err
}

func TestPostRetries(t *testing.T) {
	for _, tc := range []struct {
		name        string
		answers     []int
		wantErr     string
		want503     int
		wantErrRetr int
	}{
		{name: "accepted", answers: []int{202}},
		{name: "503 then accepted", answers: []int{503, 503, 202}, want503: 2},
		{name: "transport error then accepted", answers: []int{0, 202}, wantErrRetr: 1},
		{name: "400 is not retried", answers: []int{400, 202}, wantErr: "400"},
		{name: "gives up", answers: []int{503, 503, 503, 503}, wantErr: "after 3 attempts", want503: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var slept []time.Duration
			i := 0
			rt := roundTripFunc(func(*http.Request) (*http.Response, error) {
				st := tc.answers[i]
				i++
				switch st {
				case 0:
					return nil, fmt.Errorf("connection reset")
				case 503:
					return answer(503, http.Header{"Retry-After": {"2"}}, `{}`), nil
				case 202:
					return answer(202, nil, `{"accepted":1,"rejected":0,"results":[{"index":0,"status":"accepted"}]}`), nil
				}
				return answer(st, nil, `{"code":"bad"}`), nil
			})
			p := &poster{client: &http.Client{Transport: rt}, url: "http://x.invalid/v1/usage", tenant: "loadgen",
				maxAttempts: 3, backoff: 100 * time.Millisecond, maxBackoff: time.Second,
				sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
			res, err := p.post(context.Background(), []byte("{}\n"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil || res.accepted != 1 {
				t.Fatalf("res %+v err %v", res, err)
			}
			if res.retries503 != tc.want503 || res.retriesOther != tc.wantErrRetr {
				t.Fatalf("retries %d/%d, want %d/%d", res.retries503, res.retriesOther, tc.want503, tc.wantErrRetr)
			}
			for j, d := range slept {
				if tc.answers[j] == 503 && d < 2*time.Second {
					t.Fatalf("slept %s after a 503 with Retry-After: 2", d)
				}
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-3 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// gatedStore answers StoredLines from a script and counts the exact
// (FINAL) reads.
type gatedStore struct {
	Store
	stored []uint64 // one answer per poll; the last repeats
	exact  int
}

// next is the next count of the script: the pipeline stores a line per
// poll, each read sees the next state.
func (g *gatedStore) next() uint64 {
	n := g.stored[0]
	if len(g.stored) > 1 {
		g.stored = g.stored[1:]
	}
	return n
}

func (g *gatedStore) StoredLines(context.Context, string, string) (uint64, error) {
	return g.next(), nil
}

func (g *gatedStore) Lines(context.Context, string, string) (uint64, error) {
	g.exact++
	return g.next(), nil
}

func (g *gatedStore) Duplicates(context.Context, string, string) (uint64, error) { return 0, nil }

func (g *gatedStore) CustomerTotals(context.Context, string, string) (map[string]decimal.Decimal, error) {
	return map[string]decimal.Decimal{"r-c1": decimal.NewFromInt(5)}, nil
}

func (g *gatedStore) Unrated(context.Context, string, string) (uint64, error) { return 0, nil }

// verify reads the exact counts only once the stored rows reach the
// expected lines: while fewer rows are stored, the lines cannot be complete,
// and the FINAL reads are what cost ClickHouse.
func TestVerifyReadsExactCountsOnceEnoughRowsAreStored(t *testing.T) {
	st := &gatedStore{stored: []uint64{0, 1, 1, 2}}
	exp := Expected{Lines: 2, PerCustomer: map[string]decimal.Decimal{"r-c1": decimal.NewFromInt(5)}, Total: decimal.NewFromInt(5)}
	v, err := verify(context.Background(), st, "t", "r", exp, false, time.Now(), time.Minute, time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Exact || st.exact != 1 {
		t.Errorf("exact %v after %d exact reads, want exact after 1 (%s)", v.Exact, st.exact, v.Problem())
	}
}
