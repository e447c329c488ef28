package tenants

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeWindowLister struct {
	m   map[string]time.Duration
	err error
}

func (f *fakeWindowLister) DedupeWindows(context.Context) (map[string]time.Duration, error) {
	return f.m, f.err
}

func TestWindows(t *testing.T) {
	store := &fakeWindowLister{err: errors.New("clickhouse down")}
	reg := prometheus.NewRegistry()
	const def = 35 * 24 * time.Hour
	w := NewWindows(store, def, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	ctx := context.Background()
	if _, loaded := w.Window("acme"); loaded || w.Ready(ctx) == nil {
		t.Fatal("windows loaded before any refresh")
	}
	if err := w.Refresh(ctx); err == nil {
		t.Fatal("refresh against a failing store succeeded")
	}
	if _, loaded := w.Window("acme"); loaded {
		t.Fatal("a failed first refresh counts as loaded")
	}
	if n := testutil.ToFloat64(w.failures); n != 1 {
		t.Fatalf("failures counted %v, want 1", n)
	}
	store.m, store.err = map[string]time.Duration{"acme": 60 * 24 * time.Hour}, nil
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "kakin_tenant_windows_stale", "kakin_tenant_windows_age_seconds"); n != 2 {
		t.Errorf("%d staleness gauges registered, want 2", n)
	}
	for tenant, want := range map[string]time.Duration{"acme": 60 * 24 * time.Hour, "other": def} {
		if got, loaded := w.Window(tenant); !loaded || got != want {
			t.Errorf("Window(%s) = %v, %v; want %v", tenant, got, loaded, want)
		}
	}
	if w.Ready(ctx) != nil {
		t.Error("not ready after a load")
	}
	// A failed reload keeps the last windows.
	store.m, store.err = nil, errors.New("down again")
	_ = w.Refresh(ctx)
	if got, loaded := w.Window("acme"); !loaded || got != 60*24*time.Hour {
		t.Errorf("after a failed reload Window(acme) = %v, %v; want the last one", got, loaded)
	}
}
