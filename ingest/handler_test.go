package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// recordingProducer stands in for Kafka in these unit tests of the HTTP
// contract; the integration and end-to-end tests use a real broker.
type recordingProducer struct {
	msgs []kafka.Message
	err  error
}

func (p *recordingProducer) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func serve(t *testing.T, p Producer, lim Limits, contentType, body string) (*httptest.ResponseRecorder, Response) {
	t.Helper()
	h := NewHandler(p, lim, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	req := httptest.NewRequest(http.MethodPost, "/v1/usage", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req = req.WithContext(tenant.With(req.Context(), "acme"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp Response
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("decode response: %v\n%s", err, rec.Body)
		}
	}
	return rec, resp
}

const goodEvent = `{"id":"e1","customer":"c1","element":"api_calls","quantity":"2.5","time":"2026-11-01T00:00:00Z"}`

func TestHandlerMixedBatch(t *testing.T) {
	p := &recordingProducer{}
	body := "[" + goodEvent + `,{"id":"e2","customer":"c1","element":"api_calls","quantity":-1,"time":"2026-11-01T00:00:00Z"}]`
	rec, resp := serve(t, p, DefaultLimits, "application/json", body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	if resp.Accepted != 1 || resp.Rejected != 1 || resp.Results[0].Status != "accepted" ||
		resp.Results[1].Status != "rejected" || resp.Results[1].Errors[0].Field != "quantity" {
		t.Fatalf("response %+v", resp)
	}
	if len(p.msgs) != 1 {
		t.Fatalf("produced %d messages, want 1", len(p.msgs))
	}
	var ev schemas.UsageEvent
	if err := json.Unmarshal(p.msgs[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Tenant != "acme" || ev.ID != "e1" || ev.Quantity.String() != "2.5" {
		t.Errorf("produced event %+v", ev)
	}
	if string(p.msgs[0].Key) != "acme/c1" || !p.msgs[0].Time.Equal(ev.ReceivedAt) {
		t.Errorf("key %q time %v: want tenant/customer key and ingest time", p.msgs[0].Key, p.msgs[0].Time)
	}
}

func TestHandlerNDJSON(t *testing.T) {
	p := &recordingProducer{}
	rec, resp := serve(t, p, DefaultLimits, "application/x-ndjson", goodEvent+"\nnot json\n"+goodEvent+"\n")
	if rec.Code != http.StatusAccepted || resp.Accepted != 2 || resp.Rejected != 1 || len(p.msgs) != 2 {
		t.Fatalf("status %d response %+v produced %d", rec.Code, resp, len(p.msgs))
	}
}

func TestHandlerAllRejected(t *testing.T) {
	p := &recordingProducer{}
	rec, resp := serve(t, p, DefaultLimits, "application/json", `{"id":"x"}`)
	if rec.Code != http.StatusUnprocessableEntity || resp.Rejected != 1 || len(p.msgs) != 0 {
		t.Fatalf("status %d response %+v", rec.Code, resp)
	}
}

func TestHandlerKafkaDownIs503(t *testing.T) {
	p := &recordingProducer{err: errors.New("broker unreachable")}
	rec, _ := serve(t, p, DefaultLimits, "application/json", goodEvent)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d retry-after %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if strings.Contains(rec.Body.String(), `"accepted"`) {
		t.Errorf("503 body reports accepted records: %s", rec.Body)
	}
}

func TestHandlerLimits(t *testing.T) {
	lim := Limits{MaxBodyBytes: 120, MaxRecords: 2}
	rec, _ := serve(t, &recordingProducer{}, lim, "application/json", "["+goodEvent+","+goodEvent+"]")
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body_too_large") {
		t.Errorf("oversized body: status %d %s", rec.Code, rec.Body)
	}
	lim.MaxBodyBytes = 1 << 20
	rec, _ = serve(t, &recordingProducer{}, lim, "application/json", "["+goodEvent+","+goodEvent+","+goodEvent+"]")
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "too_many_records") {
		t.Errorf("too many records: status %d %s", rec.Code, rec.Body)
	}
	rec, _ = serve(t, &recordingProducer{}, lim, "application/json", "[")
	if rec.Code != http.StatusBadRequest {
		t.Errorf("malformed body: status %d", rec.Code)
	}
}

func TestHandlerVersionedResults(t *testing.T) {
	body := "[" + goodEvent + `,{"id":"bad"}]`
	for _, tt := range []struct {
		version string
		want    int // results listed
	}{{"", 2}, {httpapi.V20261101, 2}, {httpapi.V20261201, 1}} {
		h := NewHandler(&recordingProducer{}, DefaultLimits, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		req := httptest.NewRequest(http.MethodPost, "/v1/usage", strings.NewReader(body))
		if tt.version != "" {
			req.Header.Set(httpapi.VersionHeader, tt.version)
		}
		req = req.WithContext(tenant.With(req.Context(), "acme"))
		rec := httptest.NewRecorder()
		httpapi.WithVersion(h).ServeHTTP(rec, req)
		var resp Response
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Results) != tt.want || resp.Accepted != 1 || resp.Rejected != 1 {
			t.Errorf("version %q: %d results listed (%+v), want %d", tt.version, len(resp.Results), resp, tt.want)
		}
		if resp.Results[len(resp.Results)-1].Status != "rejected" || resp.Results[len(resp.Results)-1].Index != 1 {
			t.Errorf("version %q: rejected record not listed with its index: %+v", tt.version, resp.Results)
		}
	}
}

func TestHandlerEventLimitStoresNothing(t *testing.T) {
	p := &recordingProducer{}
	h := NewHandler(p, DefaultLimits, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var asked int
	h.LimitEvents(func(_ context.Context, _ http.ResponseWriter, n int) (bool, func(http.ResponseWriter)) {
		asked = n
		return false, func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) }
	})
	req := httptest.NewRequest(http.MethodPost, "/v1/usage", strings.NewReader("["+goodEvent+","+goodEvent+`,{"id":"bad"}]`))
	req = req.WithContext(tenant.With(req.Context(), "acme"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || asked != 2 || len(p.msgs) != 0 {
		t.Fatalf("status %d, limiter asked for %d events, %d stored; want 429, 2, 0", rec.Code, asked, len(p.msgs))
	}
}
