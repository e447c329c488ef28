package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/tenants"
)

// unlimited never runs out, so every measured check is a full allowed one.
var unlimited = tenants.Limits{IngestEventsPerSecond: 1_000_000_000, IngestRequestsPerSecond: 1_000_000_000,
	AdminRequestsPerMinute: 1_000_000_000}

type dist []time.Duration

func (d dist) pct(p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func sample(n int, f func()) dist {
	for range n / 10 { // warm up: pool, script cache
		f()
	}
	out := make(dist, n)
	for i := range out {
		start := time.Now()
		f()
		out[i] = time.Since(start)
	}
	return out
}

// TestLatency prints what the limiter adds to a request (run with -v). It
// asserts nothing about time: the figures depend on the machine.
func TestLatency(t *testing.T) {
	e := newEnv(t, Defaults{})
	ctx := context.Background()
	p := principal(unlimited)
	const n = 5000

	ping := sample(n, func() { e.rdb.Ping(ctx) })
	check := sample(n, func() { _, _ = e.l.AllowEvents(ctx, p, 1) })
	events := sample(n, func() { _, _ = e.l.AllowEvents(ctx, p, 500) })

	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	req := httptest.NewRequest(http.MethodPost, "/v1/usage", nil)
	req = req.WithContext(auth.WithPrincipal(req.Context(), p))
	run := func(h http.Handler) func() {
		return func() { h.ServeHTTP(httptest.NewRecorder(), req) }
	}
	bare := sample(n, run(noop))
	ingest := sample(n, run(e.l.Requests(Ingest)(noop)))
	admin := sample(n, run(e.l.Requests(Admin)(noop)))

	hook := e.l.IngestLimiter()
	pctx := req.Context()
	both := sample(n, func() {
		_, _ = hook(pctx, httptest.NewRecorder(), 500)
	})

	row := func(name string, d dist, base time.Duration) {
		t.Logf("%-48s p50 %6.1fµs  p90 %6.1fµs  p99 %6.1fµs", name,
			us(d.pct(0.5)-base), us(d.pct(0.9)-base), us(d.pct(0.99)-base))
	}
	t.Logf("%d sequential samples each, local redis-server on loopback", n)
	row("redis PING round trip", ping, 0)
	row("one GCRA check (AllowN over EVALSHA)", check, 0)
	row("AllowEvents(500)", events, 0)
	b := bare.pct(0.5)
	row("Requests(Ingest) middleware, added", ingest, b)
	row("Requests(Admin) middleware, added", admin, b)
	row("ingest total: middleware + AllowEvents, added", both, b)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func benchReport(b *testing.B, d dist) {
	b.ReportMetric(us(d.pct(0.5)), "p50-µs")
	b.ReportMetric(us(d.pct(0.99)), "p99-µs")
}

func BenchmarkRequestsMiddleware(b *testing.B) {
	e := newEnv(b, Defaults{})
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := e.l.Requests(Ingest)(noop)
	req := httptest.NewRequest(http.MethodPost, "/v1/usage", nil)
	req = req.WithContext(auth.WithPrincipal(req.Context(), principal(unlimited)))
	d := make(dist, 0, b.N)
	for b.Loop() {
		start := time.Now()
		h.ServeHTTP(httptest.NewRecorder(), req)
		d = append(d, time.Since(start))
	}
	benchReport(b, d)
}

func BenchmarkAllowEvents(b *testing.B) {
	e := newEnv(b, Defaults{})
	p := principal(unlimited)
	ctx := context.Background()
	d := make(dist, 0, b.N)
	for b.Loop() {
		start := time.Now()
		_, _ = e.l.AllowEvents(ctx, p, 500)
		d = append(d, time.Since(start))
	}
	benchReport(b, d)
}

func BenchmarkRequestsMiddlewareParallel(b *testing.B) {
	e := newEnv(b, Defaults{})
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := e.l.Requests(Ingest)(noop)
	req := httptest.NewRequest(http.MethodPost, "/v1/usage", nil)
	req = req.WithContext(auth.WithPrincipal(req.Context(), principal(unlimited)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}

// BenchmarkIngestLimiter measures what the ingest route adds for rate
// limiting: the request and the event budget, checked concurrently.
func BenchmarkIngestLimiter(b *testing.B) {
	e := newEnv(b, Defaults{})
	check := e.l.IngestLimiter()
	ctx := auth.WithPrincipal(context.Background(), principal(unlimited))
	w := httptest.NewRecorder()
	d := make(dist, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if ok, _ := check(ctx, w, 500); !ok {
			b.Fatal("refused")
		}
		d = append(d, time.Since(start))
	}
	benchReport(b, d)
}
