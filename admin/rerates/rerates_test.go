package rerates

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/rater/pricing"
)

// Bad requests are refused before any job is created (the store is nil: a
// request that got as far as creating a job would panic).
func TestRequestsRefuseBadInput(t *testing.T) {
	q := NewRequests(nil, func() {})
	tests := []struct {
		query  string
		body   string
		status int
		field  string
	}{
		{"", `{"period":"2026-13"}`, 422, "period"},
		{"", `{"period":"2026-05","customer":"a b"}`, 422, "customer"},
		{"", `{"period":"2026-05","colour":"red"}`, 400, "colour"},
		{"", `not json`, 400, ""},
		{"?dry_run=1", `{"period":"2026-05"}`, 400, `"field":"dry_run","reason":"unknown query parameter; this route takes none"`},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/v1/rerate"+tt.query, strings.NewReader(tt.body))
		r = r.WithContext(tenant.With(r.Context(), "acme"))
		w := httptest.NewRecorder()
		q.ServeHTTP(w, r)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.field) {
			t.Errorf("%s: %d %s, want %d naming %q", tt.body, w.Code, w.Body, tt.status, tt.field)
		}
	}
	r := httptest.NewRequest("POST", "/v1/rerate", strings.NewReader(`{"period":"2026-05"}`))
	w := httptest.NewRecorder()
	q.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no tenant: %d", w.Code)
	}
}

type closedPeriods map[string]bool

func (c closedPeriods) Closed(context.Context, string) (map[string]bool, error) { return c, nil }

// A re-rate of a closed period is refused with 409 period_closed naming the
// period; nothing is created (the store is nil).
func TestRequestsRefuseAClosedPeriod(t *testing.T) {
	q := NewRequests(nil, func() {}).WithPeriods(closedPeriods{"2026-11": true})
	r := httptest.NewRequest("POST", "/v1/rerate", strings.NewReader(`{"period":"2026-11"}`))
	r = r.WithContext(tenant.With(r.Context(), "acme"))
	w := httptest.NewRecorder()
	q.ServeHTTP(w, r)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"period_closed"`) || !strings.Contains(w.Body.String(), "2026-11") {
		t.Errorf("re-rate of a closed period: %d %s, want 409 period_closed naming 2026-11", w.Code, w.Body)
	}
}

// The window holds every day that can fall into a period labelled P for any
// closing day and time zone: from the first of P−1 to the end of P.
func TestWindow(t *testing.T) {
	from, to := Window(pricing.PeriodOfMonth(2026, time.March))
	for _, in := range []time.Time{
		time.Date(2026, 2, 1, 0, 0, 0, 0, time.FixedZone("+14", 14*3600)), // closing day 1 would start on Feb 2
		time.Date(2026, 3, 31, 23, 59, 0, 0, time.FixedZone("-12", -12*3600)),
	} {
		if in.Before(from) || !in.Before(to) {
			t.Errorf("%v outside [%v, %v)", in, from, to)
		}
	}
}
