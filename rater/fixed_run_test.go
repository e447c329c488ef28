package rater

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// warnings hands every log record at warn level or above to a channel.
type warnings chan slog.Record

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) Handle(_ context.Context, r slog.Record) error {
	w <- r
	return nil
}
func (w warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnings) WithGroup(string) slog.Handler      { return w }

// A fixed-fee round that cannot write its lines is logged and counted
// (kakin_stage_errors_total{stage="rater",kind="fixed_fees"}); the emitter
// keeps running and tries again next round, and Run returns nil only when
// it is stopped. The writer is a real Kafka writer, closed: every write fails
// at once with io.ErrClosedPipe, as one closed under a running emit would.
func TestFixedFeesRunReportsAFailedEmit(t *testing.T) {
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
	src.set(t, "fx", fixedCatalogue)
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	w := stream.NewWriter([]string{"127.0.0.1:1"}, "")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := stream.NewMetrics(prometheus.NewRegistry())
	logged := make(warnings, 16)
	f := NewFixedFees(src, engines, w, m, slog.New(logged))
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	f.now = func() time.Time { return time.Date(2026, 3, 31, 0, 0, 0, 0, tokyo) } // March's fee is due

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, time.Hour) }()
	var rec slog.Record
	select {
	case rec = <-logged:
	case err := <-done:
		t.Fatalf("Run returned %v while running", err)
	}
	var logErr error
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			logErr, _ = a.Value.Any().(error)
		}
		return true
	})
	if !errors.Is(logErr, io.ErrClosedPipe) {
		t.Errorf("logged %q with err %v, want the write's io.ErrClosedPipe", rec.Message, logErr)
	}
	if n := testutil.ToFloat64(m.Errors.WithLabelValues(StageName, "fixed_fees")); n != 1 {
		t.Errorf("fixed_fees errors counted: %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.Records.WithLabelValues(StageName, "fixed_fee")); n != 0 {
		t.Errorf("%v fixed-fee lines counted as written", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after it was stopped, want nil", err)
	}
}
