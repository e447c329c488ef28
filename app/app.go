// Package app wires a Kakin process out of modules. Each role (ingest,
// dedupe, rater, aggregator, admin) and each dependency roles share
// (ClickHouse, Redis, Kafka, the tenant registry and windows, the
// catalogue replica, the /v1 API rules, the job runner) is a module: a
// name, an init function and the modules it depends on, one file each. A Manager initialises the
// modules the configured roles need, dependencies first and each once; what
// they start runs in one supervised Group that feeds /readyz. cmd/kakin
// parses flags into a Config and calls New and Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// The roles a process runs.
const (
	Ingest     = "ingest"
	Dedupe     = "dedupe"
	Rater      = "rater"
	Aggregator = "aggregator"
	Admin      = "admin"
)

// The modules roles share.
const (
	ClickHouse     = "clickhouse"      // the connection, readiness "clickhouse"
	Redis          = "redis"           // the shared client
	Kafka          = "kafka"           // brokers, writers, consumers; readiness "kafka"
	Tenants        = "tenants"         // the tenant registry: tenants, limits, dedupe windows
	TenantWindows  = "tenant_windows"  // every tenant's dedupe window, reloaded
	CatalogReplica = "catalog_replica" // the catalogue, polled from ClickHouse
	API            = "http_api"        // the /v1 rules: tokens, rate limits, cursors, idempotency keys
	Jobs           = "jobs"            // the job runner and /v1/jobs
)

// The role groups: --roles takes them alone or in a list.
const (
	All      = "all"      // every role
	Pipeline = "pipeline" // the stages behind Kafka: dedupe, rater, aggregator
	APIRoles = "api"      // the roles that serve /v1: ingest, admin
)

// Roles are the roles in the order "all" lists them.
var Roles = []string{Ingest, Dedupe, Rater, Aggregator, Admin}

// register declares the module graph: every module, what it needs, and
// the role groups. An init function finds its dependencies' products on a.
func (a *App) register(m *Manager) {
	m.Register(ClickHouse, a.initClickHouse)
	m.Register(Redis, a.initRedis)
	m.Register(Kafka, a.initKafka)
	m.Register(Tenants, a.initTenants, ClickHouse)
	m.Register(TenantWindows, a.initTenantWindows, Tenants)
	m.Register(CatalogReplica, a.initCatalogReplica, ClickHouse)
	m.Register(API, a.initAPI, ClickHouse, Redis, Tenants)
	m.Register(Jobs, a.initJobs, ClickHouse, Redis, API)

	m.Register(Ingest, a.initIngest, Kafka, TenantWindows, API, Jobs)
	m.Register(Dedupe, a.initDedupe, Kafka, Redis, TenantWindows)
	m.Register(Rater, a.initRater, Kafka, Redis, ClickHouse, CatalogReplica)
	m.Register(Aggregator, a.initAggregator, Kafka, ClickHouse)
	m.Register(Admin, a.initAdmin, Kafka, Redis, ClickHouse, CatalogReplica, API, Jobs)

	m.RegisterGroup(All, Roles...)
	m.RegisterGroup(Pipeline, Dedupe, Rater, Aggregator)
	m.RegisterGroup(APIRoles, Ingest, Admin)
}

// App is one Kakin process: its roles, the products of the modules they
// need, its HTTP routes and its supervised components.
type App struct {
	cfg     Config
	log     *slog.Logger
	roles   []string
	reg     *prometheus.Registry
	metrics *stream.Metrics
	mux     *http.ServeMux
	group   *Group
	closers []func()      // run after every component returned, last first
	ready   chan struct{} // closed once the HTTP listener is bound
	addr    string

	// Set by the shared modules' init functions.
	kafka    stream.Conn // every Kafka client's brokers, TLS and SASL
	ch       driver.Conn
	rdb      *redis.Client
	tenants  *tenants.Store
	windows  *tenants.Windows
	replica  *catalogstore.Replica
	api      *apiRoutes
	jobStore *jobs.Store
	runner   *jobs.Runner
}

// New validates cfg and initialises the modules of its roles. It connects
// to ClickHouse when a role needs it; Run starts everything else.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	roles, err := ParseRoles(cfg.Roles)
	if err != nil {
		return nil, err
	}
	a := newApp(cfg, log)
	a.roles = roles
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewManager()
	a.register(m)
	if err := m.Init(ctx, roles...); err != nil {
		a.close()
		return nil, err
	}
	a.mountProcessRoutes()
	log.Info("roles configured", "roles", strings.Join(roles, ","))
	return a, nil
}

// newApp returns an App without modules (tests add components to it).
func newApp(cfg Config, log *slog.Logger) *App {
	reg := prometheus.NewRegistry()
	return &App{cfg: cfg, log: log, reg: reg, metrics: stream.NewMetrics(reg), mux: http.NewServeMux(),
		group: NewGroup(log, reg), ready: make(chan struct{})}
}

// hasRole reports whether the process runs role.
func (a *App) hasRole(role string) bool { return slices.Contains(a.roles, role) }

// onClose runs fn at the end of Run, after every component returned.
func (a *App) onClose(fn func()) { a.closers = append(a.closers, fn) }

// close runs the closers, last first.
func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// roleNames is the graph --roles reads: the roles and the groups.
var roleNames = func() *Manager {
	m := NewManager()
	new(App).register(m)
	return m
}()

// ParseRoles reads --roles: "all", a group, or a comma list of roles and
// groups. Groups are expanded; each role appears once, in the order given.
func ParseRoles(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(Roles, r) && !roleNames.IsGroup(r) {
			return nil, fmt.Errorf("unknown role %q (want all, api, pipeline or some of %s)", r, strings.Join(Roles, ","))
		}
		for _, role := range roleNames.Members(r) {
			if !slices.Contains(out, role) {
				out = append(out, role)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no roles given")
	}
	return out, nil
}
