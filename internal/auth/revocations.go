package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/kakin-dev/kakin/internal/reload"
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
	*reload.Value[map[string]struct{}]
	store revokedLister
}

func newRevocations(store revokedLister, interval time.Duration, log *slog.Logger) *Revocations {
	r := &Revocations{store: store}
	r.Value = reload.New("revocation list", interval, log, func(ctx context.Context) (map[string]struct{}, error) {
		ids, err := r.store.RevokedClientIDs(ctx)
		if err != nil {
			return nil, err
		}
		set := make(map[string]struct{}, len(ids))
		for _, id := range ids {
			set[id] = struct{}{}
		}
		return set, nil
	})
	r.WhileUnloaded = "authenticated requests get 503"
	return r
}

// Revoked reports whether client id is revoked, and whether the list has
// been loaded at all.
func (r *Revocations) Revoked(id string) (revoked, loaded bool) {
	set, loaded := r.Get()
	if !loaded {
		return false, false
	}
	_, revoked = set[id]
	return revoked, true
}

// Len is the number of revoked clients in the list (0 before a load).
func (r *Revocations) Len() int {
	set, _ := r.Get()
	return len(set)
}

// run refreshes every interval until ctx ends; before the first successful
// load it retries every second. tick runs after every refresh attempt.
func (r *Revocations) run(ctx context.Context, tick func()) { r.Run(ctx, tick) }
