package billing

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPathPeriodTakesEveryLabel: a close or reopen names its period in the
// URL path. A weekly label holds a '/', sent escaped (%2F); the route must
// still match and hand the handler the label itself. A bad label is 404
// naming the three forms.
func TestPathPeriodTakesEveryLabel(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/billing-periods/{period}/close", func(w http.ResponseWriter, r *http.Request) {
		if p, ok := pathPeriod(w, r); ok {
			_, _ = w.Write([]byte(p))
		}
	})
	for _, c := range []struct {
		segment, wantBody string
		wantCode          int
	}{
		{"2019-03", "2019-03", http.StatusOK},
		{"2019-03-04", "2019-03-04", http.StatusOK},
		{"2019-03-04%2FP1W", "2019-03-04/P1W", http.StatusOK},
		{"2019-03-04%2fP1W", "2019-03-04/P1W", http.StatusOK},
		{"2019-3", periodLabels, http.StatusNotFound},
		{"2019-03-04%2FP2W", periodLabels, http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/billing-periods/"+c.segment+"/close", nil))
		if rec.Code != c.wantCode || !strings.Contains(rec.Body.String(), c.wantBody) {
			t.Errorf("%s: %d %q, want %d containing %q", c.segment, rec.Code, rec.Body.String(), c.wantCode, c.wantBody)
		}
	}
}
