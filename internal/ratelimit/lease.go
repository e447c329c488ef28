package ratelimit

import (
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Leasing keeps the shared Redis budget exact while taking the Redis round
// trip off most requests. When a budget is large (at least leaseMinRate per
// window), a check that goes to Redis asks for its own units plus a lease of
// 1/leaseDivisor of the rate, and the process keeps the lease to answer the
// next checks of the same budget locally. Leased units are taken from the
// shared budget when they are granted, so all processes together never pass
// more than the limit; a lease not used up within one window is dropped, so
// a process idles on at most one lease (5 % of the rate) of other processes'
// budget. Small budgets (admin limits of a few requests per minute) are
// always checked in Redis, exactly.
const (
	leaseMinRate = 100
	leaseDivisor = 20
)

// leaseSize is the units a refill adds for lim, or 0 when lim is too small
// to lease.
func leaseSize(lim redis_rate.Limit) int {
	if lim.Rate < leaseMinRate {
		return 0
	}
	return lim.Rate / leaseDivisor
}

// lease is the units of one budget this process holds.
type lease struct {
	mu        sync.Mutex
	units     int
	expires   time.Time
	remaining int       // the shared budget's remaining units at the last refill
	resetAt   time.Time // when the shared budget was full again, as of the last refill
	limit     redis_rate.Limit
}

// leases holds every budget's lease, by Redis key.
type leases struct {
	mu sync.Mutex
	m  map[string]*lease
}

func (ls *leases) get(key string) *lease {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*lease{}
	}
	l, ok := ls.m[key]
	if !ok {
		l = &lease{}
		ls.m[key] = l
	}
	return l
}

// take spends n leased units if the lease (still valid, and for the same
// limit) holds them. The caller holds l.mu.
func (l *lease) take(n int, lim redis_rate.Limit, now time.Time) bool {
	if l.limit != lim || now.After(l.expires) || l.units < n {
		return false
	}
	l.units -= n
	return true
}
