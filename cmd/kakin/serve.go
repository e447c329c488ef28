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
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/dedupe"
	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/catalogstore"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/tenantwindow"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/kakin-dev/kakin/rater"
	"github.com/kakin-dev/kakin/rater/runstate"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/schemas/openapi"
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
	loops   []func(ctx context.Context) error
	closers []func()
	ready   chan struct{} // closed once the HTTP listener is bound
	addr    string
	runner  *jobs.Runner // the process's job runner, shared by every job kind
}

// jobRunner returns the process's job runner, creating it (and its loop) on
// first use; each role registers the job kinds it runs.
func (s *server) jobRunner(store *jobs.Store, rdb *redis.Client) *jobs.Runner {
	if s.runner == nil {
		s.runner = jobs.NewRunner(jobs.Options{Store: store, Redis: rdb, LeaseTTL: s.cfg.JobLease,
			Workers: s.cfg.JobWorkers, Log: s.log, Registerer: s.reg})
		s.loops = append(s.loops, s.runner.Run)
	}
	return s.runner
}

func newServer(ctx context.Context, cfg config, log *slog.Logger) (*server, error) {
	roles, err := parseRoles(cfg.Roles)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &server{cfg: cfg, log: log, reg: reg, metrics: stream.NewMetrics(reg), mux: http.NewServeMux(), ready: make(chan struct{})}
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
		conn, err := chdb.Open(ctx, chdb.Config{Addr: cfg.CHAddr, Database: cfg.CHDatabase, User: cfg.CHUser, Password: cfg.CHPassword})
		if err != nil {
			return nil, err
		}
		ch = conn
		s.closers = append(s.closers, func() { conn.Close() })
		s.checks = append(s.checks, check{"clickhouse", func(ctx context.Context) error { return conn.Ping(ctx) }})
		return conn, nil
	}
	consumer := func(stage, group string, topics []string) stream.ConsumerConfig {
		return stream.ConsumerConfig{Stage: stage, Brokers: brokers, Group: group, Topics: topics,
			MaxBatch: cfg.BatchSize, MaxWait: cfg.FlushInterval, SessionTimeout: cfg.SessionTimeout,
			Log: log, Metrics: s.metrics}
	}
	writer := func(topic string) *kafka.Writer {
		w := stream.NewWriter(brokers, topic)
		s.closers = append(s.closers, func() { w.Close() })
		return w
	}

	var rdb *redis.Client
	redisClient := func() *redis.Client {
		if rdb == nil {
			rdb = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, DialTimeout: 3 * time.Second,
				ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxRetries: 2,
				ContextTimeoutEnabled: true}) // callers' deadlines bound every command
			s.closers = append(s.closers, func() { rdb.Close() })
		}
		return rdb
	}

	// Every tenant's dedupe window, for ingest (how old an event may be) and
	// dedupe (how long its ids are remembered); loaded once per process.
	var windows *tenantwindow.Windows
	tenantWindows := func() (*tenantwindow.Windows, error) {
		if windows != nil {
			return windows, nil
		}
		conn, err := clickhouse()
		if err != nil {
			return nil, err
		}
		windows = tenantwindow.New(auth.NewStore(conn), cfg.DedupeWindow, cfg.TenantRefresh, log, reg)
		s.loops = append(s.loops, windows.Run)
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
			s.loops = append(s.loops, replica.Run)
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
			s.loops = append(s.loops, func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) },
				sweeper.Run)
		case "rater":
			pl, err := rater.LoadPriceList(cfg.PriceList)
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
				WithEngines(engines, runstate.New(redisClient(), cfg.RaterStateTTL)).
				WithRerate(aggregator.NewRecords(conn, nil),
					&stream.GroupPosition{Client: kc, Group: "kakin-aggregator", Topic: schemas.TopicAccepted}, 2*time.Minute)
			cc := consumer(rater.StageName, "kakin-rater", []string{schemas.TopicAccepted})
			s.loops = append(s.loops, func(ctx context.Context) error {
				// Nothing is priced before the catalogue is loaded: a
				// catalogue tenant's usage must not fall to the price list.
				if err := replica.WaitReady(ctx); err != nil {
					return nil // stopping
				}
				go func() { _ = engines.Run(ctx) }()
				engines.Refresh()
				fixed := rater.NewFixedFees(replica, engines, writer(""), s.metrics, log)
				go func() { _ = fixed.Run(ctx, time.Minute) }()
				return stream.Consume(ctx, cc, stage.HandleBatch)
			})
		case "aggregator":
			conn, err := clickhouse()
			if err != nil {
				return nil, err
			}
			stage := aggregator.NewStage(conn, s.metrics, reg)
			cc := consumer(aggregator.StageName, "kakin-aggregator", aggregator.Topics)
			s.loops = append(s.loops, func(ctx context.Context) error { return stream.Consume(ctx, cc, stage.HandleBatch) })
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
				catalogstore.StoreOptions{Log: log, Registerer: reg, MaxFutureSkew: cfg.MaxFutureSkew})
			api.registerAdmin(conn, writer(""), store)
			s.registerRerate(conn, redisClient, api, writer(""))
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

// run serves HTTP and runs the consumer loops until ctx ends or one fails,
// then shuts down: in-flight requests and batches are finished first.
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
		return fmt.Errorf("listen %s: %w", s.cfg.HTTPAddr, err)
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
	for _, loop := range s.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil {
				errc <- err
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
		s.log.Error("component failed; shutting down", "err", runErr)
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	wg.Wait()
	s.log.Info("kakin stopped")
	return runErr
}
