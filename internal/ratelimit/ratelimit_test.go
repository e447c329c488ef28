package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// testRedis is the redis-server of this test binary (nil in -short).
var testRedis *devstack.Redis

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Redis: true}, func(context.Context) error {
		testRedis = testenv.RedisServer()
		return nil
	})
}

func needRedis(t testing.TB) *devstack.Redis {
	t.Helper()
	if testRedis == nil {
		t.Skip("needs a redis-server (skipped in -short)")
	}
	return testRedis
}

type env struct {
	l   *Limiter
	reg *prometheus.Registry
	rdb *redis.Client
}

// testCheckTimeout bounds a check in the tests of budgets: on a loaded
// machine a healthy Redis can take longer than CheckTimeout to answer, and a
// check that fails open would then count against no budget. The tests of
// failing open use CheckTimeout itself.
const testCheckTimeout = 5 * time.Second

// newEnv is one "process": its own client, registry and limiter.
func newEnv(t testing.TB, d Defaults) env {
	t.Helper()
	r := needRedis(t)
	rdb := NewClientTimeout(r.Addr, testCheckTimeout)
	t.Cleanup(func() { rdb.Close() })
	reg := prometheus.NewRegistry()
	return env{l: New(rdb, d, reg).WithCheckTimeout(testCheckTimeout), reg: reg, rdb: rdb}
}

var seq atomic.Int64

// tenantID returns a tenant id no other test (or run) uses.
func tenantID() string {
	return "t" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(seq.Add(1), 10)
}

func principal(limits tenants.Limits) auth.Principal {
	return auth.Principal{Tenant: tenantID(), ClientID: "client-1", Scopes: []auth.Scope{auth.ScopeAdmin}, Limits: limits}
}

// counter reads kakin_ratelimit_decisions_total{class,outcome} from reg.
func counter(t testing.TB, reg *prometheus.Registry, class Class, outcome string) float64 {
	t.Helper()
	v := decisions(reg, class, outcome)
	if v < 0 {
		t.Fatalf("no kakin_ratelimit_decisions_total{class=%q,outcome=%q}", class, outcome)
	}
	return v
}

// decisions reads kakin_ratelimit_decisions_total{class,outcome} from reg,
// or -1 when it has no such series.
func decisions(reg *prometheus.Registry, class Class, outcome string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != "kakin_ratelimit_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["class"] == string(class) && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// serve sends one request through h as p (nil: unauthenticated); it reports
// whether the next handler ran.
func serve(h func(http.Handler) http.Handler, p *auth.Principal) (*httptest.ResponseRecorder, bool) {
	ran := false
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		w.WriteHeader(http.StatusOK)
	})
	r := httptest.NewRequest(http.MethodPost, "/v1/usage", nil)
	if p != nil {
		r = r.WithContext(auth.WithPrincipal(r.Context(), *p))
	}
	w := httptest.NewRecorder()
	h(next).ServeHTTP(w, r)
	return w, ran
}

func headerInt(t testing.TB, w *httptest.ResponseRecorder, name string) int {
	t.Helper()
	v := w.Header().Get(name)
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("header %s = %q, want an integer", name, v)
	}
	return n
}

func problem(t testing.TB, w *httptest.ResponseRecorder) httpapi.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", w.Body, err)
	}
	return p
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name     string
		class    Class
		defaults Defaults
		own      tenants.Limits
		want     int // requests allowed in a burst
		window   int // seconds
	}{
		{"ingest process default", Ingest, Defaults{IngestRequestsPerSecond: 3}, tenants.Limits{}, 3, 1},
		{"ingest client's own limit overrides the default", Ingest, Defaults{IngestRequestsPerSecond: 3},
			tenants.Limits{IngestRequestsPerSecond: 5}, 5, 1},
		{"ingest own lower limit", Ingest, Defaults{IngestRequestsPerSecond: 50}, tenants.Limits{IngestRequestsPerSecond: 2}, 2, 1},
		{"admin process default", Admin, Defaults{AdminRequestsPerMinute: 4}, tenants.Limits{}, 4, 60},
		{"admin client's own limit overrides the default", Admin, Defaults{AdminRequestsPerMinute: 10},
			tenants.Limits{AdminRequestsPerMinute: 2}, 2, 60},
		{"other classes' limits do not apply", Admin, Defaults{AdminRequestsPerMinute: 3},
			tenants.Limits{IngestRequestsPerSecond: 1, IngestEventsPerSecond: 1}, 3, 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// GCRA refills one request every window/want of wall-clock time.
			// On a loaded machine a burst can take longer than that, and a
			// refill then rightly changes the counts: such an attempt is
			// run again with a fresh budget. An attempt that ran faster than
			// one refill must match exactly.
			refill := time.Duration(tc.window) * time.Second / time.Duration(tc.want)
			for attempt := 1; ; attempt++ {
				r := &recorder{}
				start := time.Now()
				requestsBurst(r, tc.class, tc.defaults, tc.own, tc.want, tc.window)
				elapsed := time.Since(start)
				if len(r.errs) == 0 {
					return
				}
				if elapsed < refill || attempt == 5 {
					t.Fatalf("attempt %d (burst took %v, one refill every %v):\n%s", attempt, elapsed, refill, strings.Join(r.errs, "\n"))
				}
				t.Logf("attempt %d took %v, longer than one refill (%v), and saw: %s; retrying with a fresh budget", attempt, elapsed, refill, strings.Join(r.errs, "; "))
			}
		})
	}
}

// recorder collects the failures of one attempt of a timing-sensitive check.
type recorder struct{ errs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// requestsBurst sends want requests and one more through a fresh limiter and
// principal, and records in r every way the answers differ from a budget of
// want requests per window seconds.
func requestsBurst(r *recorder, class Class, defaults Defaults, own tenants.Limits, want, window int) {
	rdb := NewClientTimeout(testRedis.Addr, testCheckTimeout)
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	l := New(rdb, defaults, reg).WithCheckTimeout(testCheckTimeout)
	mw := l.Requests(class)
	p := principal(own)
	header := func(w *httptest.ResponseRecorder, name string) int {
		n, err := strconv.Atoi(w.Header().Get(name))
		if err != nil {
			r.Errorf("header %s = %q, want an integer", name, w.Header().Get(name))
			return -1
		}
		return n
	}
	for i := range want {
		w, ran := serve(mw, &p)
		if w.Code != http.StatusOK || !ran {
			r.Errorf("request %d: status %d (handler ran: %v), want 200: %s", i+1, w.Code, ran, w.Body)
			return
		}
		if got := header(w, HeaderLimit); got != want {
			r.Errorf("request %d: RateLimit-Limit = %d, want %d", i+1, got, want)
		}
		if got := header(w, HeaderRemaining); got != want-i-1 {
			r.Errorf("request %d: RateLimit-Remaining = %d, want %d", i+1, got, want-i-1)
		}
		if got := header(w, HeaderReset); got < 1 || got > window {
			r.Errorf("request %d: RateLimit-Reset = %d, want 1..%d", i+1, got, window)
		}
	}
	w, ran := serve(mw, &p)
	if w.Code != http.StatusTooManyRequests || ran {
		r.Errorf("request over the limit: status %d (handler ran: %v), want 429 without the handler", w.Code, ran)
		return
	}
	var pr httpapi.Problem
	if w.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(w.Body.Bytes(), &pr) != nil {
		r.Errorf("429 body %q (Content-Type %q), want a problem", w.Body, w.Header().Get("Content-Type"))
	} else if pr.Code != "rate_limited" || pr.Status != 429 || pr.Detail == "" {
		r.Errorf("problem = %+v, want code rate_limited with a detail", pr)
	}
	if got := header(w, "Retry-After"); got < 1 || got > window {
		r.Errorf("Retry-After = %d, want 1..%d", got, window)
	}
	if got := header(w, HeaderLimit); got != want {
		r.Errorf("429 RateLimit-Limit = %d, want %d", got, want)
	}
	if got := header(w, HeaderRemaining); got != 0 {
		r.Errorf("429 RateLimit-Remaining = %d, want 0", got)
	}
	if got := header(w, HeaderReset); got < 1 || got > window {
		r.Errorf("429 RateLimit-Reset = %d, want 1..%d", got, window)
	}
	if a, l := decisions(reg, class, "allowed"), decisions(reg, class, "limited"); a != float64(want) || l != 1 {
		r.Errorf("decisions allowed=%v limited=%v, want %d and 1", a, l, want)
	}
}

func TestRequestsWithoutPrincipalPassThrough(t *testing.T) {
	e := newEnv(t, Defaults{AdminRequestsPerMinute: 1})
	for range 3 {
		w, ran := serve(e.l.Requests(Admin), nil)
		if w.Code != http.StatusOK || !ran || w.Header().Get(HeaderLimit) != "" {
			t.Fatalf("unauthenticated request: status %d, ran %v, headers %v; want passed through untouched", w.Code, ran, w.Header())
		}
	}
}

func TestRequestsRejectsUnknownClass(t *testing.T) {
	e := newEnv(t, Defaults{})
	defer func() {
		if recover() == nil {
			t.Fatal("Requests(IngestEvents) did not panic")
		}
	}()
	e.l.Requests(IngestEvents)
}

func TestBudgetsAreIndependentPerClientAndTenant(t *testing.T) {
	e := newEnv(t, Defaults{AdminRequestsPerMinute: 2})
	mw := e.l.Requests(Admin)
	a := principal(tenants.Limits{})
	sameTenantOtherClient := a
	sameTenantOtherClient.ClientID = "client-2"
	otherTenantSameClient := a
	otherTenantSameClient.Tenant = tenantID()

	for range 2 {
		if w, _ := serve(mw, &a); w.Code != http.StatusOK {
			t.Fatalf("a: status %d", w.Code)
		}
	}
	if w, _ := serve(mw, &a); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a over its limit: status %d, want 429", w.Code)
	}
	for name, p := range map[string]*auth.Principal{
		"same tenant, other client":    &sameTenantOtherClient,
		"other tenant, same client id": &otherTenantSameClient,
	} {
		for i := range 2 {
			if w, _ := serve(mw, p); w.Code != http.StatusOK || w.Header().Get(HeaderRemaining) != strconv.Itoa(1-i) {
				t.Fatalf("%s request %d: status %d remaining %s; want its own full budget", name, i+1, w.Code, w.Header().Get(HeaderRemaining))
			}
		}
		if w, _ := serve(mw, p); w.Code != http.StatusTooManyRequests {
			t.Fatalf("%s over its limit: status %d, want 429", name, w.Code)
		}
	}
	// The ingest budget of the same client is separate from its admin one.
	if w, _ := serve(e.l.Requests(Ingest), &a); w.Code != http.StatusOK {
		t.Fatalf("a's ingest request after its admin budget ran out: status %d, want 200", w.Code)
	}
	if got, want := Key(a, Admin), "rl:"+a.Tenant+":client-1:admin"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

// Two limiters ("processes") with their own Redis clients share one budget.
func TestBudgetSharedAcrossProcesses(t *testing.T) {
	const limit = 10
	procs := []env{newEnv(t, Defaults{AdminRequestsPerMinute: limit}), newEnv(t, Defaults{AdminRequestsPerMinute: limit})}
	p := principal(tenants.Limits{})
	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	for _, e := range procs {
		mw := e.l.Requests(Admin)
		for range limit { // limit requests per process, all at once
			wg.Go(func() {
				switch w, _ := serve(mw, &p); w.Code {
				case http.StatusOK:
					allowed.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					t.Errorf("status %d", w.Code)
				}
			})
		}
	}
	wg.Wait()
	if allowed.Load() != limit || limited.Load() != limit {
		t.Fatalf("allowed %d, limited %d of %d requests with a shared limit of %d; want %d each",
			allowed.Load(), limited.Load(), 2*limit, limit, limit)
	}
	var sum float64
	for _, e := range procs {
		sum += counter(t, e.reg, Admin, "allowed")
	}
	if sum != limit {
		t.Errorf("allowed decisions over both processes = %v, want %d", sum, limit)
	}
}

func TestAllowEvents(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Defaults{IngestEventsPerSecond: 1000})
	p := principal(tenants.Limits{IngestEventsPerSecond: 100}) // own limit beats the default

	d, err := e.l.AllowEvents(ctx, p, 100)
	if err != nil || !d.Allowed || d.Limit != 100 || d.Remaining != 0 || d.FailedOpen {
		t.Fatalf("first 100 events: %+v, %v; want allowed, limit 100, remaining 0", d, err)
	}
	d, err = e.l.AllowEvents(ctx, p, 50)
	if err != nil || d.Allowed {
		t.Fatalf("50 more events right away: %+v, %v; want refused", d, err)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 500*time.Millisecond {
		t.Errorf("RetryAfter = %v, want (0, 500ms]: 50 events at 100/s", d.RetryAfter)
	}
	if d.ResetAfter <= 0 || d.ResetAfter > time.Second {
		t.Errorf("ResetAfter = %v, want (0, 1s]", d.ResetAfter)
	}
	w := httptest.NewRecorder()
	d.Reject(w)
	if w.Code != http.StatusTooManyRequests || headerInt(t, w, "Retry-After") != 1 ||
		headerInt(t, w, HeaderLimit) != 100 || headerInt(t, w, HeaderRemaining) != 0 || headerInt(t, w, HeaderReset) != 1 {
		t.Errorf("Reject: status %d headers %v", w.Code, w.Header())
	}
	if pr := problem(t, w); pr.Code != "rate_limited" {
		t.Errorf("Reject problem code %q, want rate_limited", pr.Code)
	} else {
		t.Logf("429 detail: %s", pr.Detail)
	}

	// The refused batch consumed nothing: after RetryAfter it passes.
	time.Sleep(d.RetryAfter + 10*time.Millisecond)
	if d, err := e.l.AllowEvents(ctx, p, 50); err != nil || !d.Allowed {
		t.Fatalf("50 events after RetryAfter: %+v, %v; want allowed", d, err)
	}

	// The ingest hook refuses the same way and hands back the 429 writer.
	hook := e.l.IngestLimiter()
	ok, reject := hook(auth.WithPrincipal(ctx, p), httptest.NewRecorder(), 90)
	if ok || reject == nil {
		t.Fatalf("hook with an exhausted budget: ok %v", ok)
	}
	w = httptest.NewRecorder()
	reject(w)
	if w.Code != http.StatusTooManyRequests {
		t.Errorf("hook reject: status %d, want 429", w.Code)
	}
	if ok, _ := hook(ctx, httptest.NewRecorder(), 1_000_000); !ok {
		t.Error("hook without a principal refused; want allowed (auth runs before)")
	}
	if a, l := counter(t, e.reg, IngestEvents, "allowed"), counter(t, e.reg, IngestEvents, "limited"); a != 2 || l != 2 {
		t.Errorf("event decisions allowed=%v limited=%v, want 2 and 2", a, l)
	}
}

func TestEventBatchLargerThanBurst(t *testing.T) {
	ctx := context.Background()
	t.Run("burst is the per-second limit: 413", func(t *testing.T) {
		e := newEnv(t, Defaults{IngestEventsPerSecond: 100})
		p := principal(tenants.Limits{})
		d, err := e.l.AllowEvents(ctx, p, 101)
		if err != nil || d.Allowed {
			t.Fatalf("101 events at 100/s: %+v, %v; want refused", d, err)
		}
		w := httptest.NewRecorder()
		d.Reject(w)
		if w.Code != http.StatusRequestEntityTooLarge || w.Header().Get("Retry-After") != "" {
			t.Fatalf("Reject: status %d, Retry-After %q; want 413 without Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
		pr := problem(t, w)
		if pr.Code != "batch_exceeds_event_limit" {
			t.Errorf("code %q, want batch_exceeds_event_limit", pr.Code)
		}
		t.Logf("413 detail: %s", pr.Detail)
		// Nothing was consumed: the full budget is still there.
		if d, err := e.l.AllowEvents(ctx, p, 100); err != nil || !d.Allowed {
			t.Fatalf("100 events after the refused oversized batch: %+v, %v; want allowed", d, err)
		}
	})
	t.Run("burst raised to the largest request", func(t *testing.T) {
		e := newEnv(t, Defaults{IngestEventsPerSecond: 100, MaxEventsPerRequest: 1000})
		p := principal(tenants.Limits{})
		d, err := e.l.AllowEvents(ctx, p, 1000)
		if err != nil || !d.Allowed || d.Limit != 100 {
			t.Fatalf("1000 events with burst 1000: %+v, %v; want allowed, limit 100", d, err)
		}
		d, err = e.l.AllowEvents(ctx, p, 100)
		if err != nil || d.Allowed || d.RetryAfter < 500*time.Millisecond || d.RetryAfter > time.Second {
			t.Fatalf("100 more: %+v, %v; want refused for about 1s (the long-run rate holds)", d, err)
		}
	})
}

// logSink counts log records.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
	n   int
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.buf.Write(b)
}

func (s *logSink) lines() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.buf.String()
}

func TestFailOpenWhileRedisIsDown(t *testing.T) {
	r := needRedis(t)
	e := newEnv(t, Defaults{AdminRequestsPerMinute: 1, IngestRequestsPerSecond: 1, IngestEventsPerSecond: 10})
	var sink logSink
	e.l.WithLogger(slog.New(slog.NewTextHandler(&sink, nil)))
	ctx := context.Background()
	// Warm the pool so the kill breaks live connections too.
	if d, err := e.l.AllowEvents(ctx, principal(tenants.Limits{}), 1); err != nil || d.FailedOpen {
		t.Fatalf("before the kill: %+v, %v", d, err)
	}

	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = r.Restart(context.Background())
		}
	}()

	p := principal(tenants.Limits{})
	for _, class := range []Class{Admin, Ingest} {
		for i := range 3 {
			start := time.Now()
			w, ran := serve(e.l.Requests(class), &p)
			took := time.Since(start)
			t.Logf("%s request %d with Redis down took %v", class, i+1, took)
			if took > 3*time.Second { // a refused dial fails at once; wide for a loaded machine
				t.Errorf("%s request %d took %v with Redis down; want it to fail open at once", class, i+1, took)
			}
			if w.Code != http.StatusOK || !ran {
				t.Fatalf("%s request %d with Redis down: status %d, ran %v; want allowed (fail open)", class, i+1, w.Code, ran)
			}
			if w.Header().Get(HeaderLimit) != "" {
				t.Errorf("failed-open response carries RateLimit headers: %v", w.Header())
			}
		}
		if got := counter(t, e.reg, class, "failed_open"); got != 3 {
			t.Errorf("%s failed_open = %v, want 3", class, got)
		}
	}
	for range 3 {
		d, err := e.l.AllowEvents(ctx, p, 5) // 3×5 events is over the limit of 10: still allowed
		if !d.Allowed || !d.FailedOpen || err == nil {
			t.Fatalf("events with Redis down: %+v, err %v; want allowed, failed open, with the error", d, err)
		}
	}
	if got := counter(t, e.reg, IngestEvents, "failed_open"); got != 3 {
		t.Errorf("ingest_events failed_open = %v, want 3", got)
	}
	if n, out := sink.lines(); n != 1 {
		t.Errorf("%d log lines for 9 failed checks, want 1 (at most one per 10s):\n%s", n, out)
	} else {
		t.Logf("log: %s", out)
	}

	if err := r.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := e.l.AllowEvents(ctx, principal(tenants.Limits{}), 1)
		if !d.FailedOpen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still failing open 10s after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	q := principal(tenants.Limits{})
	if w, _ := serve(e.l.Requests(Admin), &q); w.Code != http.StatusOK {
		t.Fatalf("after restart: status %d, want 200", w.Code)
	}
	if w, _ := serve(e.l.Requests(Admin), &q); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after restart, over the limit: status %d, want 429 (limiting works again)", w.Code)
	}
}

// A Redis that accepts connections but never answers must not stall a check
// past the timeout.
func TestFailOpenWhenRedisHangs(t *testing.T) {
	needRedis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
		}
	}()
	rdb := NewClient(ln.Addr().String())
	t.Cleanup(func() { rdb.Close() })
	reg := prometheus.NewRegistry()
	l := New(rdb, Defaults{}, reg).WithLogger(slog.New(slog.DiscardHandler))
	for i := range 3 {
		start := time.Now()
		d, err := l.AllowEvents(context.Background(), principal(tenants.Limits{}), 1)
		took := time.Since(start)
		if !d.Allowed || !d.FailedOpen || err == nil {
			t.Fatalf("check %d against a hung Redis: %+v, %v; want failed open", i+1, d, err)
		}
		t.Logf("check %d failed open after %v (%v)", i+1, took.Round(time.Millisecond), err)
		if took > 3*time.Second { // CheckTimeout plus room for a loaded machine; a stall is the client's minutes
			t.Errorf("check %d took %v; want about %v", i+1, took, CheckTimeout)
		}
	}
	if got := counter(t, reg, IngestEvents, "failed_open"); got != 3 {
		t.Errorf("failed_open = %v, want 3", got)
	}
}

func TestWarnsWhenClientIgnoresDeadlines(t *testing.T) {
	var sink logSink
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&sink, nil)))
	defer slog.SetDefault(prev)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	New(rdb, Defaults{}, prometheus.NewRegistry())
	if n, _ := sink.lines(); n != 1 {
		t.Errorf("%d warnings for a client without ContextTimeoutEnabled, want 1", n)
	}
	ok := NewClient("127.0.0.1:1")
	defer ok.Close()
	New(ok, Defaults{}, prometheus.NewRegistry())
	if n, _ := sink.lines(); n != 1 {
		t.Errorf("NewClient's client drew a warning")
	}
}

func TestDefaults(t *testing.T) {
	l := New(NewClient("127.0.0.1:1"), Defaults{AdminRequestsPerMinute: 7}, prometheus.NewRegistry())
	p := auth.Principal{Tenant: "t", ClientID: "c"}
	if got := l.limit(Admin, p); got.Rate != 7 || got.Period != time.Minute || got.Burst != 7 {
		t.Errorf("admin limit %v, want 7/min", got)
	}
	if got := l.limit(Ingest, p); got.Rate != StandardDefaults.IngestRequestsPerSecond || got.Period != time.Second {
		t.Errorf("ingest limit %v, want the standard default", got)
	}
	if got := l.limit(IngestEvents, p); got.Rate != StandardDefaults.IngestEventsPerSecond || got.Burst != got.Rate {
		t.Errorf("event limit %v, want the standard default", got)
	}
	p.Limits.IngestEventsPerSecond = -5 // nonsense from a store: treated as unset
	if got := l.limit(IngestEvents, p); got.Rate != StandardDefaults.IngestEventsPerSecond {
		t.Errorf("event limit with a negative own limit: %v", got)
	}
}

func TestCeilSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, -time.Second: 0, time.Nanosecond: 1, time.Second: 1,
		1001 * time.Millisecond: 2, 59500 * time.Millisecond: 60} {
		if got := ceilSeconds(d); got != want {
			t.Errorf("ceilSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
