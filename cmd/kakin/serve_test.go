package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// takePort listens on a free loopback port for the test's duration, as
// another process would, and returns its address and port.
func takePort(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// A server whose HTTP address is taken says which flag and environment
// variable move it, and keeps the cause.
func TestServeListenErrorNamesTheFlag(t *testing.T) {
	taken, _ := takePort(t)
	s := newBareServer(config{HTTPAddr: taken}, slog.New(slog.DiscardHandler))
	ran := false
	s.addLoop("never", func(ctx context.Context) error { ran = true; return nil })
	err := s.run(context.Background())
	if err == nil {
		t.Fatal("run listened on a taken address")
	}
	for _, want := range []string{taken, "already in use", "--http-addr=HOST:PORT", "KAKIN_HTTP_ADDR=HOST:PORT", "HTTP API"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", err)
	}
	if ran {
		t.Error("a loop ran although the server could not listen")
	}
}

// `kakin dev` names the flag and environment variable that move each server
// of the local stack whose port is taken. Each case takes one port; the
// servers before it in the start order start on free ports.
func TestDevPortTakenNamesTheFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and clickhouse-server")
	}
	for _, b := range []string{"redis-server", "clickhouse-server"} {
		if !installed(b) {
			t.Skipf("%s not installed (run deploy/install-deps.sh)", b)
		}
	}
	// KAFKA_BROKERS would make kakin dev use an external broker.
	t.Setenv("KAFKA_BROKERS", "")
	os.Unsetenv("KAFKA_BROKERS")
	free := func(t *testing.T) string {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(p)
	}
	tests := []struct {
		name  string
		flag  string // the flag given the taken port
		form  string // host:port or bare port
		wants []string
	}{
		{name: "redis", flag: "redis-addr", form: "addr", wants: []string{"local Redis", "--redis-addr=HOST:PORT", "KAKIN_REDIS_ADDR=HOST:PORT"}},
		{name: "clickhouse native", flag: "clickhouse-addr", form: "addr", wants: []string{"local ClickHouse (native protocol)", "--clickhouse-addr=HOST:PORT", "KAKIN_CLICKHOUSE_ADDR=HOST:PORT"}},
		{name: "clickhouse http", flag: "clickhouse-http-port", form: "port", wants: []string{"ClickHouse's HTTP interface", "--clickhouse-http-port=PORT", "KAKIN_CLICKHOUSE_HTTP_PORT=PORT"}},
		{name: "kafka", flag: "kafka-brokers", form: "addr", wants: []string{"embedded Kafka broker", "--kafka-brokers=HOST:PORT", "KAKIN_KAFKA_BROKERS=HOST:PORT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every port the stack needs, free ones first, then the taken one.
			ports := map[string]string{}
			for _, f := range []string{"redis-addr", "clickhouse-addr", "clickhouse-http-port", "kafka-brokers"} {
				ports[f] = free(t)
			}
			taken, port := takePort(t)
			args := []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--log-level", "error"}
			for f, p := range ports {
				if f == tt.flag {
					p = strconv.Itoa(port)
				}
				if f != "clickhouse-http-port" {
					p = "127.0.0.1:" + p
				}
				args = append(args, "--"+f, p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := runDev(ctx, args)
			if err == nil {
				t.Fatal("kakin dev started with a taken port")
			}
			msg := err.Error()
			t.Logf("kakin dev: %.400s", msg)
			for _, want := range append(tt.wants, "already in use", taken) {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%.2000s", want, msg)
				}
			}
		})
	}
}

// installed reports whether a server binary is on PATH or where Debian
// puts servers (as devstack looks for it).
func installed(name string) bool {
	for _, d := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin") {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// Each rater component (catalogue engines, fixed-fee emitter, consumer) is
// a supervised loop of the server: one that fails is logged, counted and
// stops the server; the others are stopped and waited for, and only then
// are the writers closed.
func TestRaterComponentFailureStopsTheServer(t *testing.T) {
	tests := []struct {
		failing string // the component that fails
	}{
		{failing: "rater_catalogue_engines"},
		{failing: "rater_fixed_fees"},
		{failing: "rater"},
	}
	for _, tt := range tests {
		t.Run(tt.failing, func(t *testing.T) {
			var logs syncBuffer
			s := newBareServer(config{HTTPAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(&logs, nil)))
			boom := errors.New("broker unreachable")
			var running atomic.Int32
			component := func(name string) func(context.Context) error {
				return func(ctx context.Context) error {
					running.Add(1)
					defer running.Add(-1)
					if name == tt.failing {
						return boom
					}
					<-ctx.Done()
					return nil
				}
			}
			refreshed := atomic.Int32{}
			s.loops = raterLoops(func(context.Context) error { return nil }, func() { refreshed.Add(1) },
				component("rater_catalogue_engines"), component("rater_fixed_fees"), component("rater"))
			closed, runningAtClose := false, int32(-1)
			s.closers = append(s.closers, func() { closed, runningAtClose = true, running.Load() })

			// The bound only ends a server that would otherwise never stop.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := s.run(ctx)
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), tt.failing) {
				t.Errorf("run returned %v, want the failure of %s", err, tt.failing)
			}
			if n := testutil.ToFloat64(s.failures.WithLabelValues(tt.failing)); n != 1 {
				t.Errorf("kakin_component_failures_total{component=%q} = %v, want 1", tt.failing, n)
			}
			if got := logs.String(); !strings.Contains(got, "component failed") || !strings.Contains(got, "component="+tt.failing) ||
				!strings.Contains(got, boom.Error()) {
				t.Errorf("the failure was not logged:\n%s", got)
			}
			if !closed || runningAtClose != 0 {
				t.Errorf("writers closed: %v, with %d components still running; want closed after all stopped", closed, runningAtClose)
			}
			if refreshed.Load() == 0 {
				t.Error("no component compiled the engines before it started")
			}
		})
	}
}

// A fixed-fee emit in progress when the server stops is waited for: the
// Kafka writer it uses is closed only after it returned. The emit takes
// 200ms to finish its write after the stop; were the writer closed under
// it, it would see the close first (the correct order passes however slow
// the machine is).
func TestShutdownWaitsForARunningEmit(t *testing.T) {
	s := newBareServer(config{HTTPAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	emitting, writerClosed := make(chan struct{}), make(chan struct{})
	var emitReturned, closedUnderEmit, closedBeforeReturn atomic.Bool
	fixedFees := func(ctx context.Context) error {
		close(emitting)
		<-ctx.Done()
		select {
		case <-writerClosed:
			closedUnderEmit.Store(true)
		case <-time.After(200 * time.Millisecond): // the write in flight finishing
		}
		emitReturned.Store(true)
		return nil
	}
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	s.loops = raterLoops(func(context.Context) error { return nil }, func() {}, idle, fixedFees, idle)
	s.closers = append(s.closers, func() {
		closedBeforeReturn.Store(!emitReturned.Load())
		close(writerClosed)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	select {
	case <-emitting:
	case err := <-done:
		t.Fatalf("run returned %v before the emit started", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !emitReturned.Load() || closedUnderEmit.Load() || closedBeforeReturn.Load() {
		t.Errorf("run returned with the emit returned: %v; writer closed under the emit: %v, before it returned: %v",
			emitReturned.Load(), closedUnderEmit.Load(), closedBeforeReturn.Load())
	}
}

// The rater consumer's deadline per batch covers the re-rate wait and then
// the usual time to price and write a batch; it never drops below the
// default of every other consumer.
func TestRaterAttemptTimeoutCoversTheRerateWait(t *testing.T) {
	tests := []struct {
		rerateWait, want time.Duration
	}{
		{time.Second, 31 * time.Second},
		{2 * time.Minute, 2*time.Minute + 30*time.Second}, // the default --rerate-wait, once capped at 30s
		{10 * time.Minute, 10*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		if got := raterAttemptTimeout(tt.rerateWait); got != tt.want || got < stream.DefaultAttemptTimeout {
			t.Errorf("raterAttemptTimeout(%v) = %v, want %v", tt.rerateWait, got, tt.want)
		}
	}
}

// Which failures are a taken address, and what each message says.
func TestListenErrorWording(t *testing.T) {
	bind := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	tests := []struct {
		name   string
		err    error
		inUse  bool
		listen []string // listenError's message holds these
	}{
		{name: "listen of this process", err: bind, inUse: true,
			listen: []string{"already in use", "--http-addr=HOST:PORT or KAKIN_HTTP_ADDR=HOST:PORT"}},
		{name: "a server's log tail", err: errors.New("redis-server exited: exit status 1\n--- tail: Could not create server TCP listening socket 127.0.0.1:16379: bind: Address already in use"), inUse: true,
			listen: []string{"already in use", "--http-addr"}},
		{name: "another server answers on the port", err: errors.New("127.0.0.1:16379 is answered by another redis-server (process_id:7); port in use"), inUse: true,
			listen: []string{"already in use"}},
		{name: "not a taken port", err: &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)},
			listen: []string{"cannot listen on 127.0.0.1:80", "set it with --http-addr=HOST:PORT or KAKIN_HTTP_ADDR=HOST:PORT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := addrInUse(tt.err); got != tt.inUse {
				t.Errorf("addrInUse = %v, want %v", got, tt.inUse)
			}
			err := listenError(tt.err, "the HTTP API", "127.0.0.1:80", "http-addr", "HOST:PORT")
			for _, want := range tt.listen {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("listenError: %q lacks %q", err, want)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("listenError does not wrap the cause")
			}
			// The local stack explains only a taken port; any other
			// failure of its servers is theirs to describe.
			dev := portInUseError(tt.err, tt.inUse, "the local Redis", 16379, "redis-addr", "HOST:PORT")
			if tt.inUse != strings.Contains(dev.Error(), "--redis-addr=HOST:PORT or KAKIN_REDIS_ADDR=HOST:PORT") || !errors.Is(dev, tt.err) {
				t.Errorf("portInUseError(inUse=%v) = %q", tt.inUse, dev)
			}
		})
	}
}
