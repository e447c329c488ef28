package idempotency

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/redis/go-redis/v9"
)

var rdb *redis.Client

// rdb is a client of the package's redis-server (testenv); nil in -short
// mode (the tests that need it skip).
func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Redis: true}, func(context.Context) error {
		rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		testenv.AtExit(func() { rdb.Close() })
		return nil
	})
}

// counter is a handler that creates a numbered thing per execution.
func counter(n *atomic.Int64, status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"created":%d,"body":%q}`, n.Add(1), body)
	})
}

func do(h http.Handler, tenant, client, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/things", strings.NewReader(body))
	if key != "" {
		req.Header.Set(Header, key)
	}
	req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{Tenant: tenant, ClientID: client}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestReplayAndConflict(t *testing.T) {
	if rdb == nil {
		t.Skip("needs Redis")
	}
	var n atomic.Int64
	h := New(rdb, time.Hour, slog.Default()).Middleware(counter(&n, http.StatusCreated))
	key := fmt.Sprintf("k-%d", time.Now().UnixNano())

	first := do(h, "acme", "c1", key, `{"name":"x"}`)
	again := do(h, "acme", "c1", key, `{"name":"x"}`)
	if first.Code != 201 || again.Code != 201 || first.Body.String() != again.Body.String() || n.Load() != 1 {
		t.Fatalf("replay: %d %s / %d %s, executed %d times", first.Code, first.Body, again.Code, again.Body, n.Load())
	}
	if again.Header().Get(ReplayedHeader) != "true" || again.Header().Get("Content-Type") != "application/json" {
		t.Errorf("replayed headers %v", again.Header())
	}
	if c := do(h, "acme", "c1", key, `{"name":"y"}`); c.Code != http.StatusUnprocessableEntity || !strings.Contains(c.Body.String(), "idempotency_key_reused") {
		t.Errorf("same key, other body: %d %s", c.Code, c.Body)
	}
	// The same key from another client or tenant is another key.
	if c := do(h, "acme", "c2", key, `{"name":"x"}`); c.Code != 201 || n.Load() != 2 {
		t.Errorf("other client: %d, executed %d", c.Code, n.Load())
	}
	if c := do(h, "beta", "c1", key, `{"name":"x"}`); c.Code != 201 || n.Load() != 3 {
		t.Errorf("other tenant: %d, executed %d", c.Code, n.Load())
	}
	// Without a key every request executes.
	do(h, "acme", "c1", "", `{}`)
	do(h, "acme", "c1", "", `{}`)
	if n.Load() != 5 {
		t.Errorf("requests without a key executed %d times in all, want 5", n.Load())
	}
}

func TestFailuresAreNotRemembered(t *testing.T) {
	if rdb == nil {
		t.Skip("needs Redis")
	}
	var n atomic.Int64
	h := New(rdb, time.Hour, slog.Default()).Middleware(counter(&n, http.StatusInternalServerError))
	key := fmt.Sprintf("k-%d", time.Now().UnixNano())
	do(h, "acme", "c1", key, `{}`)
	do(h, "acme", "c1", key, `{}`)
	if n.Load() != 2 {
		t.Errorf("a 5xx answer was replayed: executed %d times, want 2", n.Load())
	}
}

func TestConcurrentSameKeyRunsOnce(t *testing.T) {
	if rdb == nil {
		t.Skip("needs Redis")
	}
	var n atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		counter(&n, 201).ServeHTTP(w, r)
	})
	h := New(rdb, time.Hour, slog.Default()).Middleware(slow)
	key := fmt.Sprintf("k-%d", time.Now().UnixNano())
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- do(h, "acme", "c1", key, `{}`) }()
	<-entered // the first request is executing
	second := do(h, "acme", "c1", key, `{}`)
	close(release)
	first := <-done
	if second.Code != http.StatusConflict || second.Header().Get("Retry-After") == "" || !strings.Contains(second.Body.String(), "idempotency_in_progress") {
		t.Errorf("retry while the first runs: %d %s, want 409 in progress with Retry-After", second.Code, second.Body)
	}
	if first.Code != 201 || n.Load() != 1 {
		t.Fatalf("first %d, executed %d times; want 201 once", first.Code, n.Load())
	}
	if third := do(h, "acme", "c1", key, `{}`); third.Code != 201 || third.Body.String() != first.Body.String() {
		t.Errorf("retry after the first finished: %d %s, want the first answer", third.Code, third.Body)
	}
}
