package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// Producer writes messages to Kafka and returns once they are acknowledged:
// the one writer interface of the stages, stream.Producer.
type Producer = stream.Producer

// EventLimiter decides whether the request, carrying n valid events, fits its
// caller's rate limits; it may set rate-limit headers on w. When it does not
// fit, reject writes the answer (429) and nothing of the request is stored. It
// is asked for every parsed request, also one without valid events (n = 0).
type EventLimiter func(ctx context.Context, w http.ResponseWriter, n int) (allowed bool, reject func(http.ResponseWriter))

// Windows gives each tenant's duplicate-detection window; loaded is false
// until the tenant settings were read at least once.
type Windows interface {
	Window(tenant string) (window time.Duration, loaded bool)
}

// Handler serves POST /v1/usage.
type Handler struct {
	producer Producer
	limits   Limits
	metrics  *stream.Metrics
	log      *slog.Logger
	now      func() time.Time
	events   EventLimiter
	windows  Windows
}

// LimitEvents makes the handler ask l before storing a request's valid events.
func (h *Handler) LimitEvents(l EventLimiter) { h.events = l }

// UseWindows makes each tenant's window its records' MaxAge (instead of
// Limits.MaxAge). Until the windows are loaded, requests get 503: a record
// older than an unknown window could repeat undetected.
func (h *Handler) UseWindows(w Windows) { h.windows = w }

// NewHandler returns the usage intake handler. The producer must write to
// usage.raw (or name no topic and leave it to the messages).
func NewHandler(p Producer, lim Limits, m *stream.Metrics, log *slog.Logger) *Handler {
	return &Handler{producer: p, limits: lim, metrics: m, log: log, now: clock.Now}
}

// Result is the outcome of one record of a request, in request order.
type Result struct {
	Index  int                  `json:"index"`
	ID     string               `json:"id,omitempty"`
	Status string               `json:"status"` // accepted | rejected
	Errors []httpapi.FieldError `json:"errors,omitempty"`
}

// Response is the body of a POST /v1/usage answer.
type Response struct {
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Results  []Result `json:"results"`
}

const stage = "ingest"

// UnacknowledgedDetail is the 503 problem detail when the usage log did not
// acknowledge a request's records. A failed synchronous write may still have
// stored some of them (kafka-go writes a request's records in several
// batches, one per partition), so it must not claim that nothing was
// stored; a retry of the same request is safe because record ids are
// idempotency keys: dedupe flags the repeats and they are never charged.
const UnacknowledgedDetail = "the usage log did not acknowledge every record of this request; some of them may " +
	"have been stored. Retrying the same request unchanged (the same record ids) is safe: records stored " +
	"twice are flagged as duplicates and never charged twice"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	if !httpapi.KnownQuery(w, r) {
		return
	}
	lim := h.limits
	if h.windows != nil {
		window, loaded := h.windows.Window(ten)
		if !loaded {
			httpapi.RetryAfter(w, 2*time.Second)
			httpapi.WriteProblem(w, http.StatusServiceUnavailable, "tenant_settings_unavailable",
				"the tenant settings (duplicate-detection window) are not loaded yet; retry the request unchanged")
			return
		}
		lim.MaxAge = window
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.limits.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpapi.WriteProblem(w, http.StatusRequestEntityTooLarge, "body_too_large",
				"request body is larger than the limit of "+byteSize(h.limits.MaxBodyBytes)+"; split it into several requests")
			return
		}
		httpapi.WriteProblem(w, http.StatusBadRequest, "body_unreadable", "could not read the request body: "+err.Error())
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ndjson := mediaType == "application/x-ndjson" || mediaType == "application/jsonl"
	raws, err := splitRecords(body, ndjson, h.limits.MaxRecords)
	if err != nil {
		if errors.Is(err, errTooMany) {
			httpapi.WriteProblem(w, http.StatusRequestEntityTooLarge, "too_many_records",
				"a request may carry at most "+itoa(h.limits.MaxRecords)+" records; split it into several requests")
			return
		}
		httpapi.WriteProblem(w, http.StatusBadRequest, "malformed_body", err.Error())
		return
	}
	if len(raws) == 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "empty_body", "the request carries no records")
		return
	}

	now := start.UTC()
	resp := Response{Results: make([]Result, len(raws))}
	msgs := make([]kafka.Message, 0, len(raws))
	for i, raw := range raws {
		ev, errs := parseEvent(raw, ten, now, lim)
		res := Result{Index: i, ID: ev.ID}
		if len(errs) > 0 {
			res.Status, res.Errors = "rejected", errs
			resp.Rejected++
		} else {
			msg, err := Message(&ev)
			if err != nil { // cannot happen for a validated event; never drop it silently
				res.Status, res.Errors = "rejected", []httpapi.FieldError{{Reason: "could not encode: " + err.Error()}}
				resp.Rejected++
			} else {
				res.Status = "accepted"
				resp.Accepted++
				msgs = append(msgs, msg)
			}
		}
		resp.Results[i] = res
	}

	if h.events != nil {
		if ok, reject := h.events(r.Context(), w, len(msgs)); !ok {
			h.metrics.Records.WithLabelValues(stage, "rate_limited").Add(float64(len(raws)))
			reject(w)
			return
		}
	}
	if len(msgs) > 0 {
		wctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		err := h.producer.WriteMessages(wctx, msgs...)
		cancel()
		if err != nil {
			h.log.Error("usage not stored: kafka write failed", "tenant", ten, "records", len(msgs), "err", err)
			h.metrics.Errors.WithLabelValues(stage, "kafka_write").Inc()
			httpapi.RetryAfter(w, 2*time.Second)
			httpapi.WriteProblem(w, http.StatusServiceUnavailable, "storage_unavailable",
				UnacknowledgedDetail)
			return
		}
	}
	h.metrics.Records.WithLabelValues(stage, "accepted").Add(float64(resp.Accepted))
	h.metrics.Records.WithLabelValues(stage, "rejected").Add(float64(resp.Rejected))
	h.metrics.BatchSize.WithLabelValues(stage).Observe(float64(len(raws)))
	h.metrics.BatchSeconds.WithLabelValues(stage).Observe(time.Since(start).Seconds())

	status := http.StatusAccepted
	if resp.Accepted == 0 {
		status = http.StatusUnprocessableEntity
	}
	if httpapi.AtLeast(r.Context(), httpapi.V20261201) {
		resp.Results = rejectedOnly(resp.Results)
	}
	httpapi.WriteJSON(w, status, resp)
}

// NewProducer returns the acknowledged writer for usage.raw.
func NewProducer(brokers []string) *kafka.Writer {
	return stream.NewWriter(brokers, schemas.TopicRaw)
}

// rejectedOnly keeps the results that carry errors (API version 2026-12-01 on).
func rejectedOnly(rs []Result) []Result {
	out := rs[:0]
	for _, r := range rs {
		if r.Status != "accepted" {
			out = append(out, r)
		}
	}
	return out
}
