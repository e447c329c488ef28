package corrections

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/kakin-dev/kakin/admin/usage"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
)

// maxReason bounds the reason text of a correction.
const maxReason = 500

// oneRequest is the optional body of POST /v1/usage/{usageId}/invalidate|cancel.
type oneRequest struct {
	Reason string `json:"reason"`
}

// bulkRequest is the body of POST /v1/usage/invalidate|cancel: the filters of
// GET /v1/usage (without status) and a reason.
type bulkRequest struct {
	Customer  string `json:"customer"`
	Element   string `json:"element"`
	Contract  string `json:"contract"`
	From      string `json:"from"`
	To        string `json:"to"`
	EventFrom string `json:"event_from"`
	EventTo   string `json:"event_to"`
	Reason    string `json:"reason"`
}

// CorrectionAccepted answers a correction of one record: the correction is
// published and the record takes the status once the pipeline applied it
// (GET /v1/usage/{usageId} shows it; usually within a second).
type CorrectionAccepted struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"`
	Generation  uint64    `json:"generation"`
	Status      string    `json:"status"` // the status the record will have
	RequestedAt time.Time `json:"requested_at"`
	// AdjustedPeriods are the closed billing periods the correction touches:
	// their receivables stay final; the next open period's billing run books
	// the change as adjustment lines.
	AdjustedPeriods []string `json:"adjusted_periods,omitempty"`
}

// BulkCorrectionAccepted answers a bulk correction.
type BulkCorrectionAccepted struct {
	Action      string    `json:"action"`
	Matched     int       `json:"matched"`
	Changed     int       `json:"changed"`
	Unchanged   int       `json:"unchanged"`
	RequestedAt time.Time `json:"requested_at"`
	// AdjustedPeriods: as in CorrectionAccepted.
	AdjustedPeriods []string `json:"adjusted_periods,omitempty"`
}

// ServeOne serves POST /v1/usage/{usageId}/invalidate (action
// schemas.ActionInvalidate) or /cancel (schemas.ActionCancel).
func (s *Service) ServeOne(action string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, ok := s.request(w, r, action)
		if !ok {
			return
		}
		var body oneRequest
		if !httpapi.DecodeStrict(w, r, &body, true) || !validReason(w, body.Reason) {
			return
		}
		req.Reason = body.Reason
		res, err := s.One(r.Context(), req, r.PathValue("usageId"))
		if err != nil {
			failed(w, r, err)
			return
		}
		c := res.Changed[0]
		httpapi.WriteJSON(w, http.StatusAccepted, CorrectionAccepted{ID: c.ID, Action: action, Generation: c.Generation,
			Status: schemas.StatusForGeneration(c.Generation), RequestedAt: res.RequestedAt, AdjustedPeriods: res.Adjusted})
	})
}

// ServeBulk serves POST /v1/usage/invalidate or /v1/usage/cancel.
func (s *Service) ServeBulk(action string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, ok := s.request(w, r, action)
		if !ok {
			return
		}
		var body bulkRequest
		if !httpapi.DecodeStrict(w, r, &body, false) || !validReason(w, body.Reason) {
			return
		}
		f, errs := usage.ParseRecordFilter(map[string][]string{
			"customer": {body.Customer}, "element": {body.Element}, "contract": {body.Contract},
			"from": {body.From}, "to": {body.To}, "event_from": {body.EventFrom}, "event_to": {body.EventTo},
		})
		if len(errs) == 0 && f.Empty() {
			errs = append(errs, httpapi.FieldError{Reason: "name at least one filter (customer, element, contract, from, to, event_from, event_to)"})
		}
		if len(errs) > 0 {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the filter is invalid", errs...)
			return
		}
		req.Reason = body.Reason
		res, err := s.Bulk(r.Context(), req, f)
		if err != nil {
			failed(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusAccepted, BulkCorrectionAccepted{Action: action, Matched: res.Matched,
			Changed: len(res.Changed), Unchanged: res.Unchanged, RequestedAt: res.RequestedAt, AdjustedPeriods: res.Adjusted})
	})
}

// request reads the tenant and the actor of the request; the correction
// routes take no query parameter.
func (s *Service) request(w http.ResponseWriter, r *http.Request, action string) (Request, bool) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return Request{}, false
	}
	if !httpapi.KnownQuery(w, r) {
		return Request{}, false
	}
	actor := "api"
	if p, ok := auth.FromContext(r.Context()); ok && p.ClientID != "" {
		actor = "client:" + p.ClientID
	}
	return Request{Tenant: ten, Action: action, Actor: actor}, true
}

func validReason(w http.ResponseWriter, reason string) bool {
	if len(reason) > maxReason || !utf8.ValidString(reason) {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid",
			httpapi.FieldError{Field: "reason", Reason: "at most 500 bytes of UTF-8"})
		return false
	}
	return true
}

// failed answers a refusal with its status, anything else 503.
func failed(w http.ResponseWriter, r *http.Request, err error) {
	var ref *Refusal
	if errors.As(err, &ref) {
		if ref.RetryAfter {
			httpapi.RetryAfter(w, time.Second)
		}
		httpapi.WriteProblem(w, ref.Status, ref.Code, ref.Detail)
		return
	}
	slog.ErrorContext(r.Context(), "usage correction failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "correction_failed",
		"the correction could not be completed right now; retry it unchanged (request id "+httpapi.RequestID(r.Context())+")")
}
