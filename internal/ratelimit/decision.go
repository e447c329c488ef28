package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
)

// Decision is the outcome of one check.
type Decision struct {
	Allowed bool
	// Limit is the configured limit for the window (requests per second or
	// minute, or events per second). For events, Remaining may exceed it when
	// the burst is raised to the largest request (Defaults.MaxEventsPerRequest).
	Limit int
	// Remaining is how many more units could pass right now.
	Remaining int
	// RetryAfter is, when refused, how long until this same request (for
	// events: this many events) would pass; zero when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the budget is full again.
	ResetAfter time.Duration
	// FailedOpen means Redis did not answer and the request was allowed
	// unchecked; the other fields then carry only Limit.
	FailedOpen bool

	class    Class
	window   time.Duration
	client   string
	n        int  // units asked for
	burst    int  // most units that can pass at once
	tooLarge bool // n > burst: can never pass (413, not 429)
}

// The response headers of draft-ietf-httpapi-ratelimit-headers.
const (
	HeaderLimit     = "RateLimit-Limit"
	HeaderRemaining = "RateLimit-Remaining"
	HeaderReset     = "RateLimit-Reset"
)

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// SetHeaders sets RateLimit-Limit (the limit for the window), -Remaining and
// -Reset (seconds until the budget is full again, rounded up). A decision
// that failed open sets none: nothing is known about the budget.
func (d Decision) SetHeaders(w http.ResponseWriter) {
	if d.FailedOpen {
		return
	}
	h := w.Header()
	h.Set(HeaderLimit, strconv.Itoa(d.Limit))
	h.Set(HeaderRemaining, strconv.Itoa(d.Remaining))
	h.Set(HeaderReset, strconv.Itoa(ceilSeconds(d.ResetAfter)))
}

// Reject writes the refusal: 429 rate_limited with Retry-After (whole
// seconds, rounded up, at least 1) and the RateLimit headers; or, for an
// event batch larger than the client can ever send at once, 413
// batch_exceeds_event_limit (retrying unchanged would never succeed).
func (d Decision) Reject(w http.ResponseWriter) {
	if d.tooLarge {
		httpapi.WriteProblem(w, http.StatusRequestEntityTooLarge, "batch_exceeds_event_limit",
			"this request carries "+strconv.Itoa(d.n)+" valid events but client "+strconv.Quote(d.client)+
				" may send at most "+strconv.Itoa(d.burst)+" events at once ("+strconv.Itoa(d.Limit)+
				" per second); none of this request was stored, split it into requests of at most "+
				strconv.Itoa(d.burst)+" events")
		return
	}
	retry := max(ceilSeconds(d.RetryAfter), 1)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	d.SetHeaders(w)
	httpapi.WriteProblem(w, http.StatusTooManyRequests, "rate_limited", d.detail(retry))
}

func (d Decision) detail(retry int) string {
	per := "second"
	if d.window == time.Minute {
		per = "minute"
	}
	what := string(d.class) + " requests"
	if d.class == IngestEvents {
		what = "usage events"
	}
	s := "client " + strconv.Quote(d.client) + " exceeded its limit of " + strconv.Itoa(d.Limit) + " " + what + " per " + per
	if d.class == IngestEvents {
		s += "; none of this request's " + strconv.Itoa(d.n) + " events were stored, retry it unchanged"
	} else {
		s += "; retry"
	}
	return s + " after " + strconv.Itoa(retry) + "s (Retry-After)"
}
