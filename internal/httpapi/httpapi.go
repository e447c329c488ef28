// Package httpapi holds the conventions every Kakin HTTP endpoint shares: JSON
// responses, RFC 9457 problem details for errors, request ids and access logs.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/strictjson"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// FieldError names one invalid field and why.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problem is an RFC 9457 problem details body with a stable machine code.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Code   string       `json:"code"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// WriteProblem writes an application/problem+json error.
func WriteProblem(w http.ResponseWriter, status int, code, detail string, errs ...FieldError) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(Problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status,
		Code: code, Detail: detail, Errors: errs,
	})
}

// RetryAfter sets a Retry-After header of d, in whole seconds (at least 1).
func RetryAfter(w http.ResponseWriter, d time.Duration) {
	s := int(d.Seconds())
	if s < 1 {
		s = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(s))
}

// RequestIDHeader carries the request id on every response.
const RequestIDHeader = "Request-Id"

type requestIDKey struct{}

// RequestID returns the id of the request in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Observer gives every request an id, logs one access line per request and
// records its latency per route and status.
type Observer struct {
	log      *slog.Logger
	duration *prometheus.HistogramVec
}

// NewObserver registers the request latency histogram with reg.
func NewObserver(log *slog.Logger, reg prometheus.Registerer) *Observer {
	d := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kakin_http_request_seconds", Help: "HTTP request latency by route and status.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
	}, []string{"route", "code"})
	reg.MustRegister(d)
	return &Observer{log: log, duration: d}
}

// Wrap instruments next (normally the whole mux). The request id is kept from
// the caller's Request-Id header when present and short.
func (o *Observer) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(RequestIDHeader, id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		route := r.Pattern // set by http.ServeMux on this request while routing
		if route == "" {
			route = "unmatched"
		}
		o.duration.WithLabelValues(route, strconv.Itoa(rec.status)).Observe(elapsed.Seconds())
		o.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("route", route), slog.Int("status", rec.status),
			slog.Duration("duration", elapsed))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// DecodeStrict decodes a JSON request body of at most 1 MiB into v, refusing
// unknown fields, wrong types and trailing values with a 400 invalid_body
// problem that names every problem with its path (internal/strictjson), not
// only the first. With optional, an empty body is fine and leaves v as it
// is. It reports whether v may be used.
func DecodeStrict(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body could not be read: "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return true
		}
		WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is empty; a JSON object is required")
		return false
	}
	err = strictjson.Decode(data, v)
	if err == nil {
		return true
	}
	var se *strictjson.Error
	if !errors.As(err, &se) {
		WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is not one JSON value",
			FieldError{Reason: "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")})
		return false
	}
	errs := make([]FieldError, len(se.Problems))
	for i, p := range se.Problems {
		errs[i] = FieldError{Field: p.Path, Reason: p.Reason}
	}
	WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid; errors names every problem", errs...)
	return false
}

// RequestTenant returns the authenticated tenant of r (internal/tenant).
// Without one it answers 401 unauthenticated and reports false: a handler
// never falls back to "any tenant".
func RequestTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return "", false
	}
	return ten, true
}
