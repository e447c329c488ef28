package catalogapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/idempotency"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// One ClickHouse and one Redis for the package (testenv); each test migrates
// a database of its own and uses tenants of its own.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true}) }

var seq atomic.Int64

// database migrates a database for the test.
func database(t testing.TB) (driver.Conn, *redis.Client, *vault.MasterKeys) {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "api")
	rdb := testenv.Redis(t)
	line, _ := vault.NewMasterKeyLine()
	master, err := vault.ParseMasterKeys(line)
	if err != nil {
		t.Fatal(err)
	}
	return conn, rdb, master
}

// server is one admin process serving the catalogue API over a test HTTP
// server whose every request and answer is checked against the OpenAPI
// document. Its tenant comes from the Kakin-Tenant header (as in
// --dev-insecure), so that tests can act as any tenant.
type server struct {
	t       testing.TB
	url     string
	client  *http.Client
	store   *catalogstore.Store
	replica *catalogstore.Replica
	v       *apitest.Validator
}

func newServer(t testing.TB, conn driver.Conn, rdb *redis.Client, master *vault.MasterKeys) *server {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{PollInterval: 50 * time.Millisecond, Log: quiet})
	done := make(chan struct{})
	go func() { defer close(done); _ = replica.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := replica.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	store := catalogstore.NewStore(conn, rdb, replica, vault.New(conn, rdb, master), catalogstore.StoreOptions{Log: quiet})
	api := New(store, page.NewCodec([]byte("test cursor key"), 1000), quiet)
	guard := auth.DevInsecure(quiet)
	idem := idempotency.New(rdb, time.Hour, quiet)
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		h := rt.Handler
		if rt.Write {
			h = idem.Middleware(h)
		}
		mux.Handle(rt.Pattern(), httpapi.WithVersion(guard.Require(rt.Scope)(h)))
	}
	v := apitest.NewValidator(t)
	srv := httptest.NewServer(v.Handler(httpapi.NewObserver(quiet, prometheus.NewRegistry()).Wrap(mux)))
	t.Cleanup(srv.Close)
	return &server{t: t, url: srv.URL, client: srv.Client(), store: store, replica: replica, v: v}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem is an error answer's code and field errors ("field: reason").
func (r reply) problem() (string, []string) {
	var p struct {
		Code   string
		Errors []struct{ Field, Reason string }
	}
	_ = json.Unmarshal(r.body, &p)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field+": "+e.Reason)
	}
	return p.Code, fields
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends a request as tenant; headers are name, value pairs.
func (s *server) do(ten, method, path string, body any, headers ...string) reply {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set(tenant.Header, ten)
	req.Header.Set("Authorization", "Bearer test")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// must sends a request and fails the test unless it is answered want.
func (s *server) must(want int, ten, method, path string, body any, headers ...string) reply {
	s.t.Helper()
	r := s.do(ten, method, path, body, headers...)
	if r.status != want {
		s.t.Fatalf("%s %s: %s, want %d", method, path, r, want)
	}
	return r
}

func tenantID(suffix string) string { return fmt.Sprintf("t%d-%s", seq.Add(1), suffix) }
