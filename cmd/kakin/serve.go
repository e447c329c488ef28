package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/dedupe"
	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/kakin-dev/kakin/rater"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/rater/runstate"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/schemas/openapi"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

var allRoles = []string{"ingest", "dedupe", "rater", "aggregator", "admin"}

func parseRoles(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return allRoles, nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(allRoles, r) {
			return nil, fmt.Errorf("unknown role %q (want all or some of %s)", r, strings.Join(allRoles, ","))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no roles given")
	}
	return out, nil
}

// check is one readiness dependency.
type check struct {
	name string
	fn   func(ctx context.Context) error
}

// server is one Kakin process: the roles it runs, their HTTP routes and the
// dependencies /readyz checks.
type server struct {
	cfg     config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *stream.Metrics
	mux     *http.ServeMux
	checks  []check
	loops   []loop
	closers []func()      // run after every loop returned, last first
	ready   chan struct{} // closed once the HTTP listener is bound
	addr    string
	runner  *jobs.Runner // the process's job runner, shared by every job kind

	failures *prometheus.CounterVec // loops that returned an error, by component
}

// loop is one long-running component of a process (a consumer, a poller, an
// emitter). run works until ctx ends and then returns nil; an error stops
// the whole process (see server.run).
type loop struct {
	name string // metric label and log attribute
	run  func(ctx context.Context) error
}

// addLoop runs fn as a supervised component of the server.
func (s *server) addLoop(name string, fn func(ctx context.Context) error) {
	s.loops = append(s.loops, loop{name: name, run: fn})
}

// consumer returns the consumer configuration of a stage and registers its
// readiness check, "<stage>_kafka": it fails while the stage cannot fetch
// from Kafka. The consumer rides such an outage out (retrying with a
// backoff, kakin_stage_kafka_up 0) rather than failing the process.
func (s *server) consumer(stage, group string, topics []string) stream.ConsumerConfig {
	health := &stream.Health{}
	s.checks = append(s.checks, check{stage + "_kafka", health.Ready})
	return stream.ConsumerConfig{Stage: stage, Brokers: s.cfg.brokers(), Group: group, Topics: topics,
		MaxBatch: s.cfg.BatchSize, MaxWait: s.cfg.FlushInterval, SessionTimeout: s.cfg.SessionTimeout,
		Log: s.log, Metrics: s.metrics, Health: health}
}

// newBareServer returns a server without roles: metrics, routes and loops
// are added by newServer (and by tests).
func newBareServer(cfg config, log *slog.Logger) *server {
	reg := prometheus.NewRegistry()
	s := &server{cfg: cfg, log: log, reg: reg, metrics: stream.NewMetrics(reg), mux: http.NewServeMux(), ready: make(chan struct{}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_component_failures_total",
			Help: "Components (consumers, pollers, emitters) that failed, by component; a failure stops the process."}, []string{"component"})}
	reg.MustRegister(s.failures)
	return s
}

// jobRunner returns the process's job runner, creating it (and its loop) on
// first use; each role registers the job kinds it runs.
func (s *server) jobRunner(store *jobs.Store, rdb *redis.Client) *jobs.Runner {
	if s.runner == nil {
		s.runner = jobs.NewRunner(jobs.Options{Store: store, Redis: rdb, LeaseTTL: s.cfg.JobLease,
			Workers: s.cfg.JobWorkers, Log: s.log, Registerer: s.reg})
		s.addLoop("jobs", s.runner.Run)
	}
	return s.runner
}

func newServer(ctx context.Context, cfg config, log *slog.Logger) (*server, error) {
	roles, err := parseRoles(cfg.Roles)
	if err != nil {
		return nil, err
	}
	s := newBareServer(cfg, log)
	reg := s.reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	brokers := cfg.brokers()
	if len(brokers) == 0 {
		return nil, errors.New("no kafka brokers configured")
	}
	s.checks = append(s.checks, check{"kafka", func(ctx context.Context) error { return stream.Ping(ctx, brokers) }})

	var ch driver.Conn
	var clickhouse func() (driver.Conn, error)
	clickhouse = func() (driver.Conn, error) {
		if ch != nil {
			return ch, nil
		}
		conn, err := chdb.Open(ctx, chdb.Config{Addr: cfg.CHAddr, Database: cfg.CHDatabase, User: cfg.CHUser, Password: cfg.CHPassword, Cluster: cfg.CHCluster})
		if err != nil {
			return nil, err
		}
		ch = conn
		s.closers = append(s.closers, func() { conn.Close() })
		s.checks = append(s.checks, check{"clickhouse", func(ctx context.Context) error { return conn.Ping(ctx) }})
		return conn, nil
	}
	consumer := s.consumer
	writer := func(topic string) *kafka.Writer {
		w := stream.NewWriter(brokers, topic)
		s.closers = append(s.closers, func() { w.Close() })
		return w
	}

	var rdb *redis.Client
	redisClient := func() *redis.Client {
		if rdb == nil {
			rdb = cfg.mainRedis()
			s.closers = append(s.closers, func() { rdb.Close() })
		}
		return rdb
	}

	// Every tenant's dedupe window, for ingest (how old an event may be) and
	// dedupe (how long its ids are remembered); loaded once per process.
	var windows *tenants.Windows
	tenantWindows := func() (*tenants.Windows, error) {
		if windows != nil {
			return windows, nil
		}
		conn, err := clickhouse()
		if err != nil {
			return nil, err
		}
		windows = tenants.NewWindows(tenants.NewStore(conn), cfg.DedupeWindow, cfg.TenantRefresh, log, reg)
		s.addLoop("tenant_windows", windows.Run)
		s.checks = append(s.checks, check{"tenant_windows", windows.Ready})
		return windows, nil
	}

	// The catalogue replica: one per process, shared by the roles that need
	// it (the admin API; the rater can read it through catalogReplica too).
	// Without the admin role it holds no personal data (raters need none).
	var replica *catalogstore.Replica
	catalogReplica := func(conn driver.Conn) *catalogstore.Replica {
		if replica == nil {
			replica = catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{PollInterval: cfg.CatalogPollInterval,
				WithoutPII: !slices.Contains(roles, "admin"), Log: log, Registerer: reg})
			s.addLoop("catalog_replica", replica.Run)
			s.checks = append(s.checks, check{"catalog", replica.Healthy})
		}
		return replica
	}

	// The HTTP API of the ingest and admin roles: authentication, rate limits,
	// pagination cursors and minor versions, the same for every route.
	var api *apiRoutes
	if slices.Contains(roles, "ingest") || slices.Contains(roles, "admin") {
		api, err = s.newAPI(ctx, clickhouse, redisClient)
		if err != nil {
			return nil, err
		}
	}

	for _, role := range roles {
		switch role {
		case "ingest":
			lim := ingest.Limits{MaxBodyBytes: cfg.MaxBodyBytes, MaxRecords: cfg.MaxRecords,
				MaxFutureSkew: cfg.MaxFutureSkew, MaxAge: cfg.DedupeWindow}
			raw := writer(schemas.TopicRaw)
			h := ingest.NewHandler(raw, lim, s.metrics, log)
			h.LimitEvents(api.limiter.IngestLimiter())
			w, err := tenantWindows()
			if err != nil {
				return nil, err
			}
			h.UseWindows(w)
			api.handleSelfLimited("POST /v1/usage", auth.ScopeUsageWrite, h)
			if err := s.registerImports(clickhouse, redisClient, api, raw, lim); err != nil {
				return nil, err
			}
		case "dedupe":
			w, err := tenantWindows()
			if err != nil {
				return nil, err
			}
			claimsRedis := redis.UniversalClient(redisClient())
			if cfg.DedupeRedisCluster != "" {
				cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: splitList(cfg.DedupeRedisCluster),
					DialTimeout: 3 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
					MaxRetries: 2, ContextTimeoutEnabled: true})
				s.closers = append(s.closers, func() { cluster.Close() })
				claimsRedis = cluster
			}
			claims := dedupe.NewClaimStore(claimsRedis)
			s.checks = append(s.checks, check{"redis", claims.Ping})
			stage := dedupe.NewStage(claims, writer(""), s.metrics,
				dedupe.Options{Windows: w, FutureSkew: cfg.MaxFutureSkew, Registerer: reg})
			sweeper := dedupe.NewSweeper(claimsRedis, w, cfg.MaxFutureSkew, 0, log, reg)
			cc := consumer(dedupe.StageName, "kakin-dedupe", []string{schemas.TopicRaw})
			s.addLoop("dedupe", func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) })
			s.addLoop("dedupe_sweeper", sweeper.Run)
		case "rater":
			if cfg.RerateWait <= 0 {
				return nil, fmt.Errorf("--rerate-wait must be positive, got %v", cfg.RerateWait)
			}
			pl, err := pricelist.Load(cfg.PriceList)
			if err != nil {
				return nil, err
			}
			conn, err := clickhouse()
			if err != nil {
				return nil, err
			}
			// Tenants with a stored catalogue are priced by its compiled
			// engine with running state in Redis; the others by the price
			// list file.
			replica := catalogReplica(conn)
			engines := rater.NewEngines(replica, log, reg)
			kc := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
			stage := rater.NewStage(pl, writer(""), s.metrics).
				WithEngines(engines, runstate.New(redisClient(), cfg.RaterStateTTL).WithReplicaWait(cfg.stateReplicas())).
				WithRerate(usagedb.NewRecords(conn),
					&stream.GroupPosition{Client: kc, Group: "kakin-aggregator", Topic: schemas.TopicAccepted}, cfg.RerateWait)
			fixed := rater.NewFixedFees(replica, engines, writer(""), s.metrics, log)
			cc := consumer(rater.StageName, "kakin-rater", []string{schemas.TopicAccepted})
			cc.AttemptTimeout = raterAttemptTimeout(cfg.RerateWait)
			s.loops = append(s.loops, raterLoops(replica.WaitReady, engines.Refresh, engines.Run,
				func(ctx context.Context) error { return fixed.Run(ctx, time.Minute) },
				func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) })...)
		case "aggregator":
			conn, err := clickhouse()
			if err != nil {
				return nil, err
			}
			stage := aggregator.NewStage(conn, s.metrics, reg)
			cc := consumer(aggregator.StageName, "kakin-aggregator", aggregator.Topics)
			s.addLoop("aggregator", func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) })
		case "admin":
			conn, err := clickhouse()
			if err != nil {
				return nil, err
			}
			if cfg.DevInsecure {
				if _, err := vault.GenerateMasterKeyFile(cfg.MasterKeyFile); err != nil {
					return nil, err
				}
			}
			master, err := vault.LoadMasterKeys(cfg.MasterKeyFile)
			if err != nil {
				return nil, fmt.Errorf("customers' personal fields need a master key (create one with `kakin dev`, or see docs/ARCHITECTURE.md): %w", err)
			}
			store := catalogstore.NewStore(conn, redisClient(), catalogReplica(conn), vault.New(conn, redisClient(), master),
				catalogstore.StoreOptions{Log: log, Registerer: reg, MaxFutureSkew: cfg.MaxFutureSkew, DataLimits: catalogueLimits(tenants.NewStore(conn))})
			api.registerAdmin(conn, writer(""), store)
			s.registerRerate(conn, redisClient, api, writer(""))
			s.registerBilling(conn, redisClient(), api, catalogReplica(conn))
			if err := s.registerReports(conn, redisClient, api, catalogReplica(conn)); err != nil {
				return nil, err
			}
		}
	}
	if api != nil {
		conn, err := clickhouse()
		if err != nil {
			return nil, err
		}
		api.registerJobs(conn)
		s.mux.Handle("GET /openapi.json", openapi.OpenAPIHandler())
		s.mux.Handle("GET /docs", openapi.DocsHandler())
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path)
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	log.Info("roles configured", "roles", strings.Join(roles, ","))
	return s, nil
}

// raterAttemptTimeout is the rater consumer's deadline per batch: a re-rate
// request in the batch may wait up to rerateWait for the aggregator, and the
// batch then still needs the usual time to be priced and written.
func raterAttemptTimeout(rerateWait time.Duration) time.Duration {
	return rerateWait + stream.DefaultAttemptTimeout
}

// raterLoops are the rater role's components: the catalogue engines
// (recompiled on every catalogue change), the fixed-fee emitter and the
// usage.accepted consumer. Each is a loop of the server like any other:
// supervised, and waited for before the Kafka writers it uses are closed.
// None starts before the catalogue replica is loaded (ready): a catalogue
// tenant's usage must not fall to the price list, nor its fixed fees be
// looked for in an empty catalogue; each compiles the engines (refresh)
// before it starts, so none depends on the others having started.
func raterLoops(ready func(context.Context) error, refresh func(), engines, fixedFees, consume func(context.Context) error) []loop {
	afterCatalogue := func(run func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := ready(ctx); err != nil {
				if ctx.Err() != nil {
					return nil // stopping
				}
				return fmt.Errorf("wait for the catalogue: %w", err)
			}
			refresh()
			return run(ctx)
		}
	}
	return []loop{
		{name: "rater_catalogue_engines", run: afterCatalogue(engines)},
		{name: "rater_fixed_fees", run: afterCatalogue(fixedFees)},
		{name: "rater", run: afterCatalogue(consume)},
	}
}

// readyz answers 200 only when every dependency of this process's roles answers.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for _, c := range s.checks {
		if err := c.fn(ctx); err != nil {
			status[c.name] = err.Error()
			code = http.StatusServiceUnavailable
		} else {
			status[c.name] = "ok"
		}
	}
	httpapi.WriteJSON(w, code, status)
}

// run serves HTTP and runs the loops until ctx ends or one fails, then shuts
// down: in-flight requests and batches are finished first, every loop is
// waited for, and only then are the writers and connections closed, so
// nothing is closed under a running write.
func (s *server) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			s.closers[i]()
		}
	}()
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return listenError(err, "the HTTP API (and /metrics, /healthz, /readyz)", s.cfg.HTTPAddr, "http-addr", "HOST:PORT")
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           httpapi.NewObserver(s.log, s.reg).Wrap(s.mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, len(s.loops)+1)
	var wg sync.WaitGroup
	for _, l := range s.loops {
		s.failures.WithLabelValues(l.name) // at 0 from the start, so increase() sees the first failure
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.run(ctx)
			switch {
			case err != nil:
				s.failures.WithLabelValues(l.name).Inc()
				s.log.Error("component failed", "component", l.name, "err", err)
				errc <- fmt.Errorf("%s: %w", l.name, err)
			case ctx.Err() == nil:
				s.log.Warn("component stopped before the process", "component", l.name)
			}
		}()
	}
	go func() {
		var err error
		if s.cfg.TLSCert != "" || s.cfg.TLSKey != "" {
			err = srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	close(s.ready)
	s.log.Info("kakin serving", "http", "http://"+s.addr)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("shutting down after a failure", "err", runErr)
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	wg.Wait() // every loop has returned: the closers (deferred above) may run
	s.log.Info("kakin stopped")
	return runErr
}

// listenError explains a failure to listen on addr: what the listener is
// for, and the flag and environment variable that move it (form is what
// they take: HOST:PORT or PORT). The cause stays wrapped.
func listenError(err error, what, addr, flagName, form string) error {
	return explainListen(err, addrInUse(err), what, addr, flagName, form)
}

// explainListen is listenError when the caller knows whether addr is taken.
func explainListen(err error, inUse bool, what, addr, flagName, form string) error {
	move := fmt.Sprintf("--%s=%s or %s=%s", flagName, form, envName(flagName), form)
	if inUse {
		return fmt.Errorf("%s: %s is already in use by another process; stop that process, or pick another with %s: %w",
			what, addr, move, err)
	}
	return fmt.Errorf("%s: cannot listen on %s (set it with %s): %w", what, addr, move, err)
}

// addrInUse reports whether err says that an address is taken: a listen of
// this process, or the log of a server it started.
func addrInUse(err error) bool {
	if errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "port in use")
}
