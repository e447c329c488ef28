package tenants

import (
	"fmt"
	"math"
)

// Limits are rate limits of a tenant or of one of its API clients; zero
// fields fall back to the tenant's, then to the process defaults.
type Limits struct {
	IngestEventsPerSecond   int `json:"ingest_events_per_second,omitempty"`
	IngestRequestsPerSecond int `json:"ingest_requests_per_second,omitempty"`
	AdminRequestsPerMinute  int `json:"admin_requests_per_minute,omitempty"`
}

// Or returns l with its zero fields taken from fallback.
func (l Limits) Or(fallback Limits) Limits {
	if l.IngestEventsPerSecond == 0 {
		l.IngestEventsPerSecond = fallback.IngestEventsPerSecond
	}
	if l.IngestRequestsPerSecond == 0 {
		l.IngestRequestsPerSecond = fallback.IngestRequestsPerSecond
	}
	if l.AdminRequestsPerMinute == 0 {
		l.AdminRequestsPerMinute = fallback.AdminRequestsPerMinute
	}
	return l
}

// Validate checks that every limit fits its column (0 to 2³²−1); the error
// wraps ErrInvalid.
func (l Limits) Validate() error {
	for _, v := range []int{l.IngestEventsPerSecond, l.IngestRequestsPerSecond, l.AdminRequestsPerMinute} {
		if v < 0 || v > math.MaxUint32 {
			return fmt.Errorf("%w: limit %d out of range 0..%d", ErrInvalid, v, uint32(math.MaxUint32))
		}
	}
	return nil
}
