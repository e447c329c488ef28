// Package ratelimit limits the request and event rates of API clients, per
// client and counted across every ingest and admin process, with GCRA state
// kept in Redis (github.com/go-redis/redis_rate).
//
// Three budgets exist per client (auth.Principal):
//
//   - Ingest requests per second: the Requests(Ingest) middleware.
//   - Ingest events per second: AllowEvents / EventLimiter, asked by the
//     ingest handler after it has validated a request's records and before it
//     writes them to Kafka, so that nothing of a refused request is stored.
//   - Admin requests per minute: the Requests(Admin) middleware.
//
// Before any client is authenticated, the token endpoint has two more
// budgets, asked through auth.AttemptLimiter (AllowTokenAttempt) before a
// client secret is hashed: token requests per minute per remote address
// (TokenAddress) and per client id attempted (TokenClient), keyed
// "rl_token:<class>:<address or hash of the client id>".
//
// Each budget is keyed "rl:<tenant>:<client>:<class>" (redis_rate prepends
// its own "rate:"), so equal client ids of two tenants never share a budget.
// A principal's own limits (Principal.Limits, already merged with its
// tenant's) win; zero fields fall back to the process Defaults.
//
// If Redis cannot answer within the check timeout (50 ms), the limiter fails
// open (every class, the token endpoint's too, which is then bounded only by
// its concurrent-hash limit): the request is allowed, kakin_ratelimit_decisions_total counts it as
// outcome="failed_open", and a warning is logged at most once per 10 s. This
// holds for admin calls too: an admin burst while Redis is down costs less
// than refusing every admin call of every tenant because of a cache outage,
// and the metric makes the degraded state visible to alerting.
package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Class names a budget. It is the last part of the Redis key and the class
// label of the metrics.
type Class string

// The request classes of Requests, and the event class of AllowEvents.
const (
	Ingest       Class = "ingest"        // ingest requests, per second
	Admin        Class = "admin"         // admin requests, per minute
	IngestEvents Class = "ingest_events" // ingest events, per second (AllowEvents)
)

// Defaults are the process-wide limits used where a principal's Limits field
// is zero. Zero fields here take the value of StandardDefaults.
type Defaults struct {
	IngestEventsPerSecond   int
	IngestRequestsPerSecond int
	AdminRequestsPerMinute  int

	// TokenPerAddressPerMinute and TokenPerClientPerMinute bound the token
	// endpoint's attempts per remote address and per client id attempted
	// (AllowTokenAttempt).
	TokenPerAddressPerMinute int
	TokenPerClientPerMinute  int

	// MaxEventsPerRequest is the most records one ingest request may carry
	// (the ingest handler's MaxRecords). The event budget's burst is
	// max(events per second, MaxEventsPerRequest), so every batch the
	// handler admits can pass once the client's budget has refilled, while
	// the long-run rate stays the per-second limit. When zero, the burst is
	// the per-second limit and a batch with more valid events than that is
	// refused with 413 batch_exceeds_event_limit (never 429: waiting would
	// not help).
	MaxEventsPerRequest int
}

// StandardDefaults fill the zero fields of the Defaults given to New.
var StandardDefaults = Defaults{IngestEventsPerSecond: 50000, IngestRequestsPerSecond: 200, AdminRequestsPerMinute: 600,
	TokenPerAddressPerMinute: 60, TokenPerClientPerMinute: 60}

// CheckTimeout bounds one Redis check; past it the check fails open.
const CheckTimeout = 50 * time.Millisecond

// failLogEvery is the least time between two "failing open" log lines.
const failLogEvery = 10 * time.Second

// Limiter checks principals against their budgets. It is safe for concurrent
// use; any number of processes may share one Redis, and so one budget.
type Limiter struct {
	rl       *redis_rate.Limiter
	d        Defaults
	log      *slog.Logger
	timeout  time.Duration
	classes  map[Class]*classMetrics
	lastWarn atomic.Int64 // unix nanos of the last failing-open log line
	leases   leases       // units of large budgets held by this process (see lease.go)
}

// New returns a limiter keeping its state in rdb, with process defaults d
// (zero fields from StandardDefaults), registering its metrics with reg.
//
// rdb should honor context deadlines (redis.Options.ContextTimeoutEnabled),
// else a hung Redis stalls a check for the client's ReadTimeout instead of
// CheckTimeout; NewClient returns such a client. New logs a warning when it
// can tell that rdb does not.
func New(rdb redis.UniversalClient, d Defaults, reg prometheus.Registerer) *Limiter {
	if d.IngestEventsPerSecond <= 0 {
		d.IngestEventsPerSecond = StandardDefaults.IngestEventsPerSecond
	}
	if d.IngestRequestsPerSecond <= 0 {
		d.IngestRequestsPerSecond = StandardDefaults.IngestRequestsPerSecond
	}
	if d.AdminRequestsPerMinute <= 0 {
		d.AdminRequestsPerMinute = StandardDefaults.AdminRequestsPerMinute
	}
	if d.TokenPerAddressPerMinute <= 0 {
		d.TokenPerAddressPerMinute = StandardDefaults.TokenPerAddressPerMinute
	}
	if d.TokenPerClientPerMinute <= 0 {
		d.TokenPerClientPerMinute = StandardDefaults.TokenPerClientPerMinute
	}
	l := &Limiter{
		rl:      redis_rate.NewLimiter(rdb),
		d:       d,
		log:     slog.Default(),
		timeout: CheckTimeout,
		classes: newMetrics(reg),
	}
	if !honorsDeadlines(rdb) {
		l.log.Warn("ratelimit: the Redis client ignores context deadlines (ContextTimeoutEnabled is false); " +
			"a hung Redis will stall requests for the client's read timeout instead of failing open after " + CheckTimeout.String())
	}
	return l
}

// WithCheckTimeout makes d the bound of one Redis check (default
// CheckTimeout) and returns l. Pair it with a client whose own timeouts are
// at least d (NewClientTimeout).
func (l *Limiter) WithCheckTimeout(d time.Duration) *Limiter {
	l.timeout = d
	return l
}

// WithLogger makes l log to log (default slog.Default()) and returns l.
func (l *Limiter) WithLogger(log *slog.Logger) *Limiter {
	l.log = log
	return l
}

// NewClient returns a Redis client suited to the limiter: it honors context
// deadlines, so no check outlasts CheckTimeout; and it neither retries a
// refused dial (go-redis otherwise dials 5 times 100 ms apart) nor a failed
// command (8 ms+ backoff), so while Redis is down a check fails open at once
// instead of waiting out the timeout on every request. (After a Redis
// restart, a stale pooled connection can cost one failed-open check.)
func NewClient(addr string) *redis.Client { return NewClientTimeout(addr, CheckTimeout) }

// NewClientTimeout is NewClient for a limiter whose checks are bounded by
// timeout instead of CheckTimeout (WithCheckTimeout).
func NewClientTimeout(addr string, timeout time.Duration) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		DialerRetries:         1,
		MaxRetries:            -1,
	})
}

func honorsDeadlines(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return true // cannot tell (ring, failover wrappers); trust the caller
}

// limit returns the GCRA limit of class for p: its own limit, else the
// process default; Rate is the RateLimit-Limit value, Period its window.
func (l *Limiter) limit(class Class, p auth.Principal) redis_rate.Limit {
	pick := func(own, def int) int {
		if own > 0 {
			return own
		}
		return def
	}
	switch class {
	case Ingest:
		return redis_rate.PerSecond(pick(p.Limits.IngestRequestsPerSecond, l.d.IngestRequestsPerSecond))
	case Admin:
		return redis_rate.PerMinute(pick(p.Limits.AdminRequestsPerMinute, l.d.AdminRequestsPerMinute))
	case IngestEvents:
		lim := redis_rate.PerSecond(pick(p.Limits.IngestEventsPerSecond, l.d.IngestEventsPerSecond))
		lim.Burst = max(lim.Rate, l.d.MaxEventsPerRequest)
		return lim
	}
	panic("ratelimit: unknown class " + strconv.Quote(string(class)))
}

// Key is the budget key of class for p (redis_rate stores it as "rate:"+Key).
// Tenant ids cannot contain ':' and classes do not, so keys never collide.
func Key(p auth.Principal, class Class) string {
	return "rl:" + p.Tenant + ":" + p.ClientID + ":" + string(class)
}

// check asks Redis whether n units of class fit p's budget.
func (l *Limiter) check(ctx context.Context, class Class, p auth.Principal, n int) (Decision, error) {
	m := l.classes[class]
	lim := l.limit(class, p)
	d := Decision{Limit: lim.Rate, class: class, window: lim.Period, client: p.ClientID, n: n, burst: lim.Burst}
	if n <= 0 {
		d.Allowed, d.Remaining = true, lim.Burst
		return d, nil
	}
	if n > lim.Burst { // can never pass: GCRA refuses a cost above the burst forever
		d.tooLarge = true
		m.limited.Inc()
		return d, nil
	}
	key := Key(p, class)
	size := leaseSize(lim)
	if size == 0 {
		d, err := l.ask(ctx, m, class, p, key, lim, n, d)
		return counted(m, d, err)
	}
	ls := l.leases.get(key)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now := time.Now()
	if ls.take(n, lim, now) {
		m.allowed.Inc()
		d.Allowed = true
		d.Remaining = max(ls.remaining+ls.units, ls.units)
		d.ResetAfter = max(ls.resetAt.Sub(now), 0)
		return d, nil
	}
	// Refill: this request's units plus a lease, taken from the shared budget
	// in one round trip; when the budget cannot spare the lease, only the
	// request's own units are asked for.
	if want := min(n+size, lim.Burst); want > n {
		got, err := l.ask(ctx, m, class, p, key, lim, want, d)
		if err != nil || got.Allowed {
			if got.Allowed && !got.FailedOpen {
				ls.units, ls.expires, ls.limit = want-n, now.Add(lim.Period), lim
				ls.remaining, ls.resetAt = got.Remaining, now.Add(got.ResetAfter)
				got.Remaining += ls.units
			}
			got.n = n
			return counted(m, got, err)
		}
	}
	d, err := l.ask(ctx, m, class, p, key, lim, n, d)
	return counted(m, d, err)
}

// ask takes n units of the budget at key in Redis.
func (l *Limiter) ask(ctx context.Context, m *classMetrics, class Class, p auth.Principal, key string, lim redis_rate.Limit, n int, d Decision) (Decision, error) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	res, err := l.rl.AllowN(cctx, key, lim, n)
	cancel()
	m.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		m.failedOpen.Inc()
		l.warn(class, p, err)
		d.Allowed, d.FailedOpen = true, true
		return d, err
	}
	d.Allowed = res.Allowed > 0
	d.Remaining = max(res.Remaining, 0)
	d.ResetAfter = max(res.ResetAfter, 0)
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, 0)
	}
	return d, nil
}

// counted records a final decision of check in the metrics.
func counted(m *classMetrics, d Decision, err error) (Decision, error) {
	switch {
	case d.FailedOpen:
	case d.Allowed:
		m.allowed.Inc()
	default:
		m.limited.Inc()
	}
	return d, err
}

// warn logs a failing-open check, at most once per failLogEvery.
func (l *Limiter) warn(class Class, p auth.Principal, err error) {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(failLogEvery) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("ratelimit: Redis check failed; allowing requests unlimited (failing open) until it answers again",
		"class", string(class), "tenant", p.Tenant, "client", p.ClientID, "err", err,
		"note", "further failures are counted in kakin_ratelimit_decisions_total{outcome=\"failed_open\"}, logged at most every 10s")
}

// Requests returns middleware limiting the request rate of class (Ingest:
// per second; Admin: per minute) per principal. It must run after the
// authentication middleware; a request without a principal passes unchecked.
// Allowed requests get RateLimit-Limit/-Remaining/-Reset headers; refused
// ones a 429 problem (code rate_limited) with Retry-After and those headers,
// and the next handler does not run.
func (l *Limiter) Requests(class Class) func(http.Handler) http.Handler {
	if class != Ingest && class != Admin {
		panic("ratelimit: Requests takes Ingest or Admin, not " + strconv.Quote(string(class)))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := auth.FromContext(r.Context())
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			d, _ := l.check(r.Context(), class, p, 1)
			if !d.Allowed {
				d.Reject(w)
				return
			}
			d.SetHeaders(w)
			next.ServeHTTP(w, r)
		})
	}
}

// AllowEvents decides whether n more ingest events of p fit its events-per-
// second budget, and consumes them if so (a refused batch consumes nothing).
// The Decision is always usable: a non-nil error only explains a decision
// that failed open (Allowed and FailedOpen are then true).
func (l *Limiter) AllowEvents(ctx context.Context, p auth.Principal, n int) (Decision, error) {
	return l.check(ctx, IngestEvents, p, n)
}

// IngestLimiter is the ingest handler's hook (ingest.EventLimiter) checking
// both ingest budgets of the caller — one request, and n events — in two
// concurrent Redis round trips, so the pair costs about one round trip of
// latency. The ingest route uses it instead of Requests(Ingest): the request
// is then counted after its body was read, which the body-size limit bounds.
// The answer carries the request budget's headers; a refusal is the refused
// budget's 429 (or 413 for a batch above the event burst).
func (l *Limiter) IngestLimiter() func(ctx context.Context, w http.ResponseWriter, n int) (bool, func(http.ResponseWriter)) {
	return func(ctx context.Context, w http.ResponseWriter, n int) (bool, func(http.ResponseWriter)) {
		p, ok := auth.FromContext(ctx)
		if !ok {
			return true, nil
		}
		events := make(chan Decision, 1)
		go func() {
			d, _ := l.check(ctx, IngestEvents, p, n)
			events <- d
		}()
		req, _ := l.check(ctx, Ingest, p, 1)
		ev := <-events
		switch {
		case !req.Allowed:
			return false, req.Reject
		case !ev.Allowed:
			return false, ev.Reject
		}
		req.SetHeaders(w)
		return true, nil
	}
}
