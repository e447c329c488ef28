package reload

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	var next []string
	var fail error
	fails := 0
	v := New("test list", 15*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(context.Context) ([]string, error) { return next, fail })
	v.OnFail = func() { fails++ }
	if _, loaded := v.Get(); loaded || v.Loaded() || !v.Stale() || v.Age() != 0 {
		t.Fatal("loaded before the first refresh")
	}
	next = []string{"a"}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, loaded := v.Get(); !loaded || len(got) != 1 || got[0] != "a" || v.Stale() {
		t.Fatalf("after a load: %v %v stale=%v", got, loaded, v.Stale())
	}
	now := time.Now()
	v.SetClock(func() time.Time { return now.Add(time.Minute) })
	next, fail = nil, errors.New("store down")
	if err := v.Refresh(context.Background()); err == nil {
		t.Fatal("refresh did not fail")
	}
	if got, _ := v.Get(); len(got) != 1 || fails != 1 {
		t.Fatalf("a failed refresh dropped the last copy (%v) or was not counted (%d)", got, fails)
	}
	if !v.Stale() || v.Age() < time.Minute {
		t.Fatalf("stale=%v age=%s after a minute without a successful refresh", v.Stale(), v.Age())
	}
	fail, next = nil, []string{"b", "c"}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get(); len(got) != 2 || v.Stale() {
		t.Fatalf("after recovering: %v stale=%v", got, v.Stale())
	}
}

// Run retries every second until the first load succeeds, then keeps the
// interval.
func TestRunRetriesUntilLoaded(t *testing.T) {
	calls := 0
	v := New("test", time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) (int, error) {
		calls++
		if calls < 2 {
			return 0, errors.New("not yet")
		}
		return 42, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ticks := make(chan struct{}, 10)
	go v.Run(ctx, func() { ticks <- struct{}{} })
	for range 2 {
		select {
		case <-ticks:
		case <-ctx.Done():
			t.Fatal("Run did not retry within a few seconds")
		}
	}
	if got, loaded := v.Get(); !loaded || got != 42 {
		t.Fatalf("after the retry: %v %v", got, loaded)
	}
}
