package usage

import (
	"net/http"

	"github.com/kakin-dev/kakin/internal/httpapi"
)

// ServeGet serves GET /v1/usage/{usageId}; another tenant's record is 404.
func (r *Records) ServeGet(w http.ResponseWriter, req *http.Request) {
	ten, ok := httpapi.RequestTenant(w, req)
	if !ok || !httpapi.KnownQuery(w, req) {
		return
	}
	d, err := r.records.Get(req.Context(), ten, req.PathValue("usageId"))
	if err != nil {
		queryFailed(w, req, err)
		return
	}
	if d == nil {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no usage record with this id")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, d)
}
