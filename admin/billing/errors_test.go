package billing

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/billing/run"
)

// A close kept from its watermark by a lagging stage answers 503
// pipeline_behind with the service's message (which names the group and
// partition) and a Retry-After, not storage_unavailable.
func TestServiceErrorPipelineBehind(t *testing.T) {
	a := New(nil, nil, nil, nil, nil, nil)
	w := httptest.NewRecorder()
	err := fmt.Errorf("close 2026-11: %w within 1s: group kakin-aggregator is behind on usage.accepted partition 3 (committed 1, needs 2)", run.ErrLagging)
	a.serviceError(w, httptest.NewRequest("POST", "/v1/billing-periods/2026-11/close", nil), err)
	body := w.Body.String()
	if w.Code != 503 || !strings.Contains(body, `"pipeline_behind"`) || !strings.Contains(body, "kakin-aggregator is behind on usage.accepted partition 3") ||
		w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), body)
	}
}
