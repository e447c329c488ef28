package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// mountProcessRoutes mounts the routes of every process, whatever its
// roles: /metrics, /healthz, /readyz and the not-found answer.
func (a *App) mountProcessRoutes() {
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path)
	})
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
}

// readyz answers 200 only when every dependency of this process's roles answers.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, ok := a.group.Ready(ctx)
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	httpapi.WriteJSON(w, code, status)
}

// Ready is closed once the HTTP listener is bound; Addr is then its address.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Addr is the address the HTTP listener is bound to, once Ready is closed.
func (a *App) Addr() string { return a.addr }

// Run serves HTTP and runs the components until ctx ends or one fails, then
// shuts down in this order: HTTP requests in flight are finished, every
// component (batches in flight included) is waited for, and only then are
// the writers and connections closed, so nothing is closed under a running
// write.
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer a.close()
	ln, err := net.Listen("tcp", a.cfg.HTTP.Addr)
	if err != nil {
		return ListenError(err, "the HTTP API (and /metrics, /healthz, /readyz)", a.cfg.HTTP.Addr, "http-addr", "HOST:PORT")
	}
	a.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           httpapi.NewObserver(a.log, a.reg).Wrap(a.mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.group.Run(ctx) // its first failure is read from Failed below
	}()
	httpErr := make(chan error, 1)
	go func() {
		var err error
		if a.cfg.HTTP.TLSCert != "" || a.cfg.HTTP.TLSKey != "" {
			err = srv.ServeTLS(ln, a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("http: %w", err)
		}
	}()
	close(a.ready)
	a.log.Info("kakin serving", "http", "http://"+a.addr)

	var runErr error
	select {
	case <-ctx.Done():
	case <-a.group.Failed():
		runErr = a.group.Err()
	case runErr = <-httpErr:
	}
	if runErr != nil {
		a.log.Error("shutting down after a failure", "err", runErr)
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	<-stopped // every component has returned: the closers (deferred above) may run
	a.log.Info("kakin stopped")
	return runErr
}
