package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
	s := newApp(Config{HTTP: HTTPConfig{Addr: taken}}, slog.New(slog.DiscardHandler))
	ran := false
	s.group.Go("never", func(ctx context.Context) error { ran = true; return nil })
	err := s.Run(context.Background())
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
			s := newApp(Config{HTTP: HTTPConfig{Addr: "127.0.0.1:0"}}, slog.New(slog.NewTextHandler(&logs, nil)))
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
			s.group.components = raterComponents(func(context.Context) error { return nil }, func() { refreshed.Add(1) },
				component("rater_catalogue_engines"), component("rater_fixed_fees"), component("rater"))
			closed, runningAtClose := false, int32(-1)
			s.onClose(func() { closed, runningAtClose = true, running.Load() })

			// The bound only ends a server that would otherwise never stop.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := s.Run(ctx)
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), tt.failing) {
				t.Errorf("run returned %v, want the failure of %s", err, tt.failing)
			}
			if n := testutil.ToFloat64(s.group.failures.WithLabelValues(tt.failing)); n != 1 {
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
	s := newApp(Config{HTTP: HTTPConfig{Addr: "127.0.0.1:0"}}, slog.New(slog.DiscardHandler))
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
	s.group.components = raterComponents(func(context.Context) error { return nil }, func() {}, idle, fixedFees, idle)
	s.onClose(func() {
		closedBeforeReturn.Store(!emitReturned.Load())
		close(writerClosed)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
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
