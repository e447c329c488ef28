package auth_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// tokenLimitEnv is an Authenticator whose token endpoint is limited by the
// real Redis-backed limiter, served in-process so each request can come from
// the remote address the test chooses.
type tokenLimitEnv struct {
	t       *testing.T
	store   *auth.Store
	handler http.Handler
	reg     *prometheus.Registry
}

func newTokenLimitEnv(t *testing.T, perAddress, perClient int) *tokenLimitEnv {
	t.Helper()
	store := auth.SharedStore(t)
	addr := auth.SharedRedisAddr(t)
	// A generous check timeout: on a loaded machine a check that failed open
	// would count against no budget and make the test flaky.
	rdb := ratelimit.NewClientTimeout(addr, 5*time.Second)
	t.Cleanup(func() { rdb.Close() })
	reg := prometheus.NewRegistry()
	lim := ratelimit.New(rdb, ratelimit.Defaults{TokenPerAddressPerMinute: perAddress, TokenPerClientPerMinute: perClient}, reg).
		WithCheckTimeout(5 * time.Second)
	a, err := auth.New(store, auth.NewKeyRingForTest(t), auth.Options{Attempts: lim,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &tokenLimitEnv{t: t, store: store, handler: a.TokenHandler(), reg: reg}
}

// attempt is one token request from remote (host:port) with id and secret.
type attempt struct {
	status     int
	body       map[string]string
	retryAfter string
}

func (e *tokenLimitEnv) try(remote, id, secret string) attempt {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Forwarded-For", "203.0.113.99") // never trusted: must not change the budget
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		e.t.Fatalf("token answer %d %q is not JSON: %v", w.Code, w.Body, err)
	}
	a := attempt{status: w.Code, body: map[string]string{}, retryAfter: w.Header().Get("Retry-After")}
	for k, v := range body {
		if s, ok := v.(string); ok {
			a.body[k] = s
		}
	}
	return a
}

// counter reads the value of the counter name{labels} from the registry, 0
// when absent.
func (e *tokenLimitEnv) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func (e *tokenLimitEnv) hashes() float64 { return e.counter("kakin_auth_secret_hashes_total", nil) }

var addrSeq atomic.Int64

// freshIPv4 returns an address of TEST-NET-2 no other test of this binary
// uses (the Redis of the test binary keeps every budget).
func freshIPv4() string {
	n := addrSeq.Add(1)
	return "198.51.100." + strconv.FormatInt(n%250+1, 10) + ":" + strconv.FormatInt(40000+n, 10)
}

// wantLimited checks a 429 answer in the OAuth2 error shape with Retry-After.
func wantLimited(t *testing.T, a attempt, what string) {
	t.Helper()
	if a.status != http.StatusTooManyRequests || a.body["error"] != "temporarily_unavailable" || a.body["error_description"] == "" {
		t.Fatalf("%s: %d %v, want 429 temporarily_unavailable with a description", what, a.status, a.body)
	}
	if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
		t.Fatalf("%s: Retry-After %q, want whole seconds >= 1", what, a.retryAfter)
	}
}

func TestTokenAttemptsLimitedPerAddressBeforeHashing(t *testing.T) {
	const n = 3
	e := newTokenLimitEnv(t, n, 1000)
	id, secret := auth.NewClientForTest(t, e.store, []auth.Scope{auth.ScopeUsageRead})
	attacker, bystander, legit := freshIPv4(), freshIPv4(), freshIPv4()

	tests := []struct {
		name       string
		remote     string
		id, secret string
		want       int // status
		hashed     bool
	}{
		{"attempt 1 wrong secret", attacker, id, "wrong", http.StatusUnauthorized, true},
		{"attempt 2 unknown client", attacker, "kc_nosuchclient", "x", http.StatusUnauthorized, true},
		{"attempt 3 wrong secret", attacker, id, "wrong-again", http.StatusUnauthorized, true},
		{"attempt 4 over the address budget", attacker, id, "wrong", http.StatusTooManyRequests, false},
		{"attempt 5 right secret, still over", attacker, id, secret, http.StatusTooManyRequests, false},
		{"another address is unaffected", bystander, "kc_nosuchclient", "x", http.StatusUnauthorized, true},
		{"the valid client gets its token", legit, id, secret, http.StatusOK, true},
	}
	for _, tt := range tests {
		before := e.hashes()
		a := e.try(tt.remote, tt.id, tt.secret)
		if a.status != tt.want {
			t.Fatalf("%s: status %d %v, want %d", tt.name, a.status, a.body, tt.want)
		}
		if tt.want == http.StatusTooManyRequests {
			wantLimited(t, a, tt.name)
		}
		if hashed := e.hashes() > before; hashed != tt.hashed {
			t.Errorf("%s: a secret was hashed: %v, want %v", tt.name, hashed, tt.hashed)
		}
	}
	if got := e.counter("kakin_auth_token_attempts_limited_total", map[string]string{"by": "address"}); got != 2 {
		t.Errorf("kakin_auth_token_attempts_limited_total{by=address} = %v, want 2", got)
	}
	if got := e.counter("kakin_ratelimit_decisions_total", map[string]string{"class": "token_address", "outcome": "limited"}); got != 2 {
		t.Errorf("kakin_ratelimit_decisions_total{class=token_address,outcome=limited} = %v, want 2", got)
	}
}

func TestTokenAttemptsLimitedPerClientID(t *testing.T) {
	const n = 2
	e := newTokenLimitEnv(t, 1000, n)
	victim, secret := auth.NewClientForTest(t, e.store, []auth.Scope{auth.ScopeUsageRead})
	other, otherSecret := auth.NewClientForTest(t, e.store, []auth.Scope{auth.ScopeUsageRead})

	tests := []struct {
		name       string
		id, secret string
		want       int
		hashed     bool
	}{
		{"guess 1", victim, "guess-1", http.StatusUnauthorized, true},
		{"guess 2", victim, "guess-2", http.StatusUnauthorized, true},
		{"guess 3 from yet another address", victim, "guess-3", http.StatusTooManyRequests, false},
		// The price of a per-client-id budget: while guesses hold it, the
		// client itself waits too (Retry-After), which the address budget
		// alone would not impose; it bounds guessing spread over addresses.
		{"the right secret waits too", victim, secret, http.StatusTooManyRequests, false},
		{"another client id is unaffected", other, otherSecret, http.StatusOK, true},
	}
	for _, tt := range tests {
		before := e.hashes()
		a := e.try(freshIPv4(), tt.id, tt.secret) // every attempt from its own address
		if a.status != tt.want {
			t.Fatalf("%s: status %d %v, want %d", tt.name, a.status, a.body, tt.want)
		}
		if tt.want == http.StatusTooManyRequests {
			wantLimited(t, a, tt.name)
		}
		if hashed := e.hashes() > before; hashed != tt.hashed {
			t.Errorf("%s: a secret was hashed: %v, want %v", tt.name, hashed, tt.hashed)
		}
	}
	if got := e.counter("kakin_auth_token_attempts_limited_total", map[string]string{"by": "client"}); got != 2 {
		t.Errorf("kakin_auth_token_attempts_limited_total{by=client} = %v, want 2", got)
	}
}
