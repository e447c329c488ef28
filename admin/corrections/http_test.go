package corrections

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// recordingProducer counts what would have been published.
type recordingProducer struct{ msgs int }

func (p *recordingProducer) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	p.msgs += len(msgs)
	return nil
}

// TestCorrectionRoutesRefuseUnknownQueryParameters: the correction routes
// take no query parameter; one is answered 400 invalid_query naming it
// before anything is read or published.
func TestCorrectionRoutesRefuseUnknownQueryParameters(t *testing.T) {
	prod := &recordingProducer{}
	svc := NewService(nil, nil, prod, prometheus.NewRegistry()) // never reached
	mux := http.NewServeMux()
	for _, a := range []string{schemas.ActionInvalidate, schemas.ActionCancel} {
		mux.Handle("POST /v1/usage/{usageId}/"+a, svc.ServeOne(a))
		mux.Handle("POST /v1/usage/"+a, svc.ServeBulk(a))
	}
	tests := []struct {
		target, body, field string
	}{
		{"/v1/usage/e1/invalidate?force=true", `{"reason":"x"}`, "force"},
		{"/v1/usage/e1/cancel?reason=x", "", "reason"},
		{"/v1/usage/invalidate?customer=c1", `{"customer":"c1"}`, "customer"},
		{"/v1/usage/cancel?dry_run=1", `{"customer":"c1"}`, "dry_run"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.body))
		req = req.WithContext(tenant.With(req.Context(), "acme"))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var p httpapi.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 400 || p.Code != "invalid_query" || len(p.Errors) != 1 ||
			p.Errors[0].Field != tt.field || p.Errors[0].Reason != "unknown query parameter; this route takes none" {
			t.Errorf("POST %s: %d %s, want 400 invalid_query naming %s", tt.target, rec.Code, rec.Body, tt.field)
		}
	}
	if prod.msgs != 0 {
		t.Errorf("%d corrections published", prod.msgs)
	}
}
