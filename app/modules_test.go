package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recorder registers modules whose init functions record the order they
// ran in.
type recorder struct {
	m     *Manager
	order []string
}

func newRecorder() *recorder { return &recorder{m: NewManager()} }

func (r *recorder) add(name string, deps ...string) {
	r.m.Register(name, func(context.Context) error { r.order = append(r.order, name); return nil }, deps...)
}

// Dependencies are initialised before the modules that need them, in the
// order they are declared; a module several others need is initialised
// once, also across calls of Init.
func TestManagerInitialisesDependenciesFirstAndOnce(t *testing.T) {
	r := newRecorder()
	r.add("clickhouse")
	r.add("redis")
	r.add("windows", "clickhouse")
	r.add("api", "clickhouse", "redis")
	r.add("ingest", "windows", "api")
	r.add("dedupe", "redis", "windows")
	r.m.RegisterGroup("both", "ingest", "dedupe")

	if err := r.m.Init(context.Background(), "both"); err != nil {
		t.Fatal(err)
	}
	want := "clickhouse,windows,redis,api,ingest,dedupe"
	if got := strings.Join(r.order, ","); got != want {
		t.Errorf("init order %s, want %s", got, want)
	}
	if err := r.m.Init(context.Background(), "dedupe", "ingest"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.order, ","); got != want {
		t.Errorf("a second Init ran modules again: %s", got)
	}
	order, err := r.m.Order("dedupe")
	if err != nil || strings.Join(order, ",") != "redis,clickhouse,windows,dedupe" {
		t.Errorf("Order(dedupe) = %v, %v", order, err)
	}
}

// An unknown module, a dependency on one, and a cycle are errors that name
// the path, and nothing is initialised.
func TestManagerRefusesUnknownModulesAndCycles(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(r *recorder)
		target string
		want   []string // the error holds these
	}{
		{name: "unknown target", setup: func(r *recorder) { r.add("a") }, target: "b",
			want: []string{`unknown module "b"`}},
		{name: "unknown dependency", setup: func(r *recorder) { r.add("a", "b"); r.add("b", "c") }, target: "a",
			want: []string{`unknown module "c"`, "a → b"}},
		{name: "cycle", setup: func(r *recorder) { r.add("x"); r.add("a", "x", "b"); r.add("b", "c"); r.add("c", "a") }, target: "a",
			want: []string{"cycle", "a → b → c → a"}},
		{name: "module depends on itself", setup: func(r *recorder) { r.add("a", "a") }, target: "a",
			want: []string{"cycle", "a → a"}},
		{name: "cycle through a group", setup: func(r *recorder) { r.add("a", "g"); r.m.RegisterGroup("g", "a") }, target: "g",
			want: []string{"cycle", "g → a → g"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			tt.setup(r)
			err := r.m.Init(context.Background(), tt.target)
			if err == nil {
				t.Fatal("Init succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if len(r.order) != 0 {
				t.Errorf("modules were initialised: %v", r.order)
			}
		})
	}
}

// A failing init stops Init: the modules after it are not initialised, and
// the error names the module and wraps the cause.
func TestManagerStopsAtTheFirstFailingInit(t *testing.T) {
	r := newRecorder()
	boom := errors.New("no master key")
	r.add("clickhouse")
	r.m.Register("admin", func(context.Context) error { return boom }, "clickhouse")
	r.add("after", "admin")
	err := r.m.Init(context.Background(), "after")
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "init admin") {
		t.Errorf("Init = %v, want the failure of admin", err)
	}
	if got := strings.Join(r.order, ","); got != "clickhouse" {
		t.Errorf("initialised %s, want only clickhouse", got)
	}
}

func TestManagerRefusesADuplicateName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a module registered twice did not panic")
		}
	}()
	r := newRecorder()
	r.add("a")
	r.add("a")
}

// Kakin's own module graph: every role and group initialises without an
// unknown name or a cycle, and the shared modules come before the roles.
func TestModuleGraph(t *testing.T) {
	m := NewManager()
	new(App).register(m)
	for _, target := range append([]string{All, Pipeline, APIRoles}, Roles...) {
		order, err := m.Order(target)
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		t.Logf("%s: %s", target, strings.Join(order, " → "))
	}
	order, _ := m.Order(Admin)
	if got := strings.Join(order, ","); got != "kafka,redis,clickhouse,catalog_replica,tenants,http_api,jobs,admin" {
		t.Errorf("admin initialises %s", got)
	}
}

func TestParseRoles(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"all", "ingest,dedupe,rater,aggregator,admin", false},
		{" all ", "ingest,dedupe,rater,aggregator,admin", false},
		{"rater", "rater", false},
		{" ingest , admin,ingest", "ingest,admin", false},
		{"pipeline", "dedupe,rater,aggregator", false},
		{"api", "ingest,admin", false},
		{"admin,pipeline", "admin,dedupe,rater,aggregator", false},
		{"ingest,billing", "", true},
		{"clickhouse", "", true}, // a shared module is no role
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := ParseRoles(tt.in)
		if (err != nil) != tt.wantErr || strings.Join(got, ",") != tt.want {
			t.Errorf("ParseRoles(%q) = %v, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// The first component that fails stops the others; Run returns its error
// once all have returned, and the failure is counted and signalled.
func TestGroupFirstFailureStopsAll(t *testing.T) {
	g := NewGroup(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	boom := errors.New("broker unreachable")
	var stopped atomic.Int32
	for _, name := range []string{"a", "b"} {
		g.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			stopped.Add(1)
			return nil
		})
	}
	g.Go("failing", func(context.Context) error { return boom })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // ends only a group that never stops
	defer cancel()
	err := g.Run(ctx)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Errorf("Run = %v, want the failure of the component", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the group stopped only at the test's deadline")
	}
	if stopped.Load() != 2 {
		t.Errorf("%d of 2 components stopped", stopped.Load())
	}
	select {
	case <-g.Failed():
	default:
		t.Error("Failed is not closed")
	}
	if n := testutil.ToFloat64(g.failures.WithLabelValues("failing")); n != 1 {
		t.Errorf("kakin_component_failures_total{component=failing} = %v, want 1", n)
	}
}

// Each component's failure series exists at 0 from the start, so that
// increase() sees its first failure.
func TestGroupFailureSeriesStartAtZero(t *testing.T) {
	g := NewGroup(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	g.Go("a", func(ctx context.Context) error { cancel(); <-ctx.Done(); return nil })
	g.Go("b", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(g.failures); n != 2 {
		t.Errorf("%d kakin_component_failures_total series, want 2 (one per component, at 0)", n)
	}
}

// Ready reports every check, and fails while one does.
func TestGroupReady(t *testing.T) {
	g := NewGroup(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	g.Check("clickhouse", func(context.Context) error { return nil })
	g.Check("kafka", func(context.Context) error { return errors.New("no broker") })
	status, ok := g.Ready(context.Background())
	if ok || status["clickhouse"] != "ok" || status["kafka"] != "no broker" {
		t.Errorf("Ready = %v, %v", status, ok)
	}
}
