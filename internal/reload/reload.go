// Package reload keeps a copy of something read from a slow store (such as
// a ClickHouse table) fresh in the background: the copy sits behind an
// atomic pointer, is reloaded every interval, and survives failed reloads;
// its age and staleness are known, so callers can export and alert on them.
package reload

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Value is a copy of T reloaded by Run. Reads are an atomic pointer load.
//
// Until the first successful load the copy is unknown (Get reports
// loaded = false) and callers should fail closed. When a later reload fails
// the last copy stays in use and staleness is logged.
type Value[T any] struct {
	name     string
	load     func(ctx context.Context) (T, error)
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	cur      atomic.Pointer[T] // nil until loaded
	lastOK   atomic.Int64      // unix nanos of the last successful load
	failures atomic.Int64      // consecutive failed loads

	// OnFail, when set, runs after every failed load (e.g. to count it).
	OnFail func()
	// WhileUnloaded says in logs what callers do until the first load
	// (e.g. "authenticated requests get 503").
	WhileUnloaded string
}

// New returns a Value named name (for logs) that load fills every interval.
func New[T any](name string, interval time.Duration, log *slog.Logger, load func(ctx context.Context) (T, error)) *Value[T] {
	if log == nil {
		log = slog.Default()
	}
	return &Value[T]{name: name, load: load, interval: interval, log: log, now: time.Now}
}

// SetClock replaces the clock (tests).
func (v *Value[T]) SetClock(now func() time.Time) { v.now = now }

// Interval is the reload interval.
func (v *Value[T]) Interval() time.Duration { return v.interval }

// Refresh loads now. On error the previous copy stays.
func (v *Value[T]) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	x, err := v.load(ctx)
	if err != nil {
		n := v.failures.Add(1)
		if v.OnFail != nil {
			v.OnFail()
		}
		if v.Loaded() {
			v.log.Warn(v.name+" is stale: refresh failed, keeping the last copy",
				"err", err, "age", v.Age().Round(time.Second), "failures", n)
		} else {
			v.log.Error(v.name+" not loaded yet", "effect", v.WhileUnloaded, "err", err, "failures", n)
		}
		return err
	}
	v.cur.Store(&x)
	v.lastOK.Store(v.now().UnixNano())
	if n := v.failures.Swap(0); n > 0 {
		v.log.Info(v.name+" refreshed again", "after_failures", n)
	}
	return nil
}

// Get returns the current copy, and whether one was loaded at all.
func (v *Value[T]) Get() (T, bool) {
	p := v.cur.Load()
	if p == nil {
		var zero T
		return zero, false
	}
	return *p, true
}

// Loaded reports whether a copy has been loaded.
func (v *Value[T]) Loaded() bool { return v.cur.Load() != nil }

// Age is the time since the last successful load (0 before the first).
func (v *Value[T]) Age() time.Duration {
	t := v.lastOK.Load()
	if t == 0 {
		return 0
	}
	return v.now().Sub(time.Unix(0, t))
}

// Stale reports whether the copy missed more than one refresh (or was never
// loaded).
func (v *Value[T]) Stale() bool {
	return !v.Loaded() || v.Age() > 2*v.interval+10*time.Second
}

// Run refreshes every interval until ctx ends; before the first successful
// load it retries every second. tick, when not nil, runs after every
// refresh attempt.
func (v *Value[T]) Run(ctx context.Context, tick func()) {
	for {
		_ = v.Refresh(ctx)
		if tick != nil {
			tick()
		}
		wait := v.interval
		if !v.Loaded() && wait > time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
