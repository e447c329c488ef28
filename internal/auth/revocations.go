package auth

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// DefaultRevocationRefresh is how often the revocation list is re-read.
const DefaultRevocationRefresh = 15 * time.Second

// MaxRevocationRefresh bounds the refresh interval: a revoked client's
// tokens must be refused within a minute.
const MaxRevocationRefresh = time.Minute

// revokedLister is the store query the cache needs.
type revokedLister interface {
	RevokedClientIDs(ctx context.Context) ([]string, error)
}

// Revocations is this process's copy of the revoked client ids, re-read
// from ClickHouse by Run. Lookups are a map read behind an atomic pointer.
//
// Until the first successful load the list is unknown and the middleware
// answers 503 rather than accept tokens it cannot check (fail closed). When
// a later refresh fails the last list stays in use: revocations made during
// the outage take effect once ClickHouse answers again. Staleness is logged
// and exported as kakin_auth_revocations_age_seconds / _stale.
type Revocations struct {
	store    revokedLister
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	set      atomic.Pointer[map[string]struct{}] // nil until loaded
	lastOK   atomic.Int64                        // unix nanos of the last successful load
	failures atomic.Int64                        // consecutive failed refreshes
	onFail   func()
}

func newRevocations(store revokedLister, interval time.Duration, log *slog.Logger) *Revocations {
	return &Revocations{store: store, interval: interval, log: log, now: time.Now}
}

// Refresh re-reads the revoked ids now. On error the previous list stays.
func (r *Revocations) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ids, err := r.store.RevokedClientIDs(ctx)
	if err != nil {
		n := r.failures.Add(1)
		if r.onFail != nil {
			r.onFail()
		}
		if loaded := r.set.Load() != nil; loaded {
			r.log.Warn("revocation list is stale: refresh failed, keeping the last list",
				"err", err, "age", r.Age().Round(time.Second), "failures", n)
		} else {
			r.log.Error("revocation list not loaded yet: authenticated requests get 503", "err", err, "failures", n)
		}
		return err
	}
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	r.set.Store(&set)
	r.lastOK.Store(r.now().UnixNano())
	if n := r.failures.Swap(0); n > 0 {
		r.log.Info("revocation list refreshed again", "revoked_clients", len(set), "after_failures", n)
	}
	return nil
}

// Revoked reports whether client id is revoked, and whether the list has
// been loaded at all.
func (r *Revocations) Revoked(id string) (revoked, loaded bool) {
	p := r.set.Load()
	if p == nil {
		return false, false
	}
	_, revoked = (*p)[id]
	return revoked, true
}

// Loaded reports whether a list has been loaded.
func (r *Revocations) Loaded() bool { return r.set.Load() != nil }

// Len is the number of revoked clients in the list (0 before a load).
func (r *Revocations) Len() int {
	if p := r.set.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// Age is the time since the last successful load (0 before the first).
func (r *Revocations) Age() time.Duration {
	t := r.lastOK.Load()
	if t == 0 {
		return 0
	}
	return r.now().Sub(time.Unix(0, t))
}

// Stale reports whether the list missed more than one refresh (or was never
// loaded).
func (r *Revocations) Stale() bool {
	return !r.Loaded() || r.Age() > 2*r.interval+10*time.Second
}

// run refreshes every interval until ctx ends; before the first successful
// load it retries every second. tick runs after every refresh attempt.
func (r *Revocations) run(ctx context.Context, tick func()) {
	for {
		_ = r.Refresh(ctx)
		if tick != nil {
			tick()
		}
		wait := r.interval
		if !r.Loaded() && wait > time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
