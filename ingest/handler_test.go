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
	"time"

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
	h.now = func() time.Time { return testNow } // the events are of November 2026
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

// recent is an event time inside every window of a handler whose clock
// reads testNow, as the handlers of these tests do.
var recent = testNow.Add(-22 * 24 * time.Hour).Format(time.RFC3339)

var goodEvent = `{"id":"e1","customer":"c1","element":"api_calls","quantity":"2.5","time":"` + recent + `"}`

func TestHandlerMixedBatch(t *testing.T) {
	p := &recordingProducer{}
	body := "[" + goodEvent + `,{"id":"e2","customer":"c1","element":"api_calls","quantity":-1,"time":"` + recent + `"}]`
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
	if err := schemas.UnmarshalEvent(p.msgs[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Tenant != "acme" || ev.ID != "e1" || ev.Quantity.String() != "2.5" {
		t.Errorf("produced event %+v", ev)
	}
	if string(p.msgs[0].Key) != "acme/c1" || !p.msgs[0].Time.Equal(ev.ReceivedAt) {
		t.Errorf("key %q time %v: want tenant/customer key and ingest time", p.msgs[0].Key, p.msgs[0].Time)
	}
	// The headers dedupe claims the record by, without decoding it.
	if tenant, id, sum, ok := schemas.ParseRawHeaders(p.msgs[0].Headers); !ok || tenant != ev.Tenant || id != ev.ID || sum != schemas.PayloadHash(&ev) {
		t.Errorf("claim headers %q %q %x %v, want %q %q %x", tenant, id, sum, ok, ev.Tenant, ev.ID, schemas.PayloadHash(&ev))
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
	// Part of a request may have been stored when the write failed: the
	// answer must neither deny that nor leave the client unsure whether a
	// retry could charge twice.
	var problem struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &problem); err != nil {
		t.Fatalf("503 body is not a problem: %v\n%s", err, rec.Body)
	}
	for _, c := range []struct {
		what   string
		phrase string
		want   bool
	}{
		{"denies that anything was stored", "none of", false},
		{"denies that anything was stored", "nothing", false},
		{"says some records may have been stored", "may have been stored", true},
		{"says retrying unchanged is safe", "unchanged", true},
		{"names the record ids", "same record ids", true},
		{"says repeats are flagged as duplicates", "duplicates", true},
		{"says nothing is charged twice", "never charged twice", true},
	} {
		if got := strings.Contains(problem.Detail, c.phrase); got != c.want {
			t.Errorf("503 detail %s = %v, want %v (phrase %q): %q", c.what, got, c.want, c.phrase, problem.Detail)
		}
	}
	if problem.Code != "storage_unavailable" {
		t.Errorf("503 code %q, want storage_unavailable", problem.Code)
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

// A query parameter is refused (POST /v1/usage takes none) and nothing of
// the request is stored.
func TestHandlerRefusesQueryParameters(t *testing.T) {
	for _, query := range []string{"mode=atomic", "tenant=other", "dry_run"} {
		p := &recordingProducer{}
		h := NewHandler(p, DefaultLimits, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		req := httptest.NewRequest(http.MethodPost, "/v1/usage?"+query, strings.NewReader(goodEvent))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(tenant.With(req.Context(), "acme"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var prob httpapi.Problem
		name, _, _ := strings.Cut(query, "=")
		if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil || rec.Code != http.StatusBadRequest || prob.Code != "invalid_query" ||
			len(prob.Errors) != 1 || prob.Errors[0].Field != name {
			t.Errorf("?%s: %d %s, want 400 invalid_query naming %s", query, rec.Code, rec.Body, name)
		}
		if len(p.msgs) != 0 {
			t.Errorf("?%s: %d records stored", query, len(p.msgs))
		}
	}
}

func TestHandlerVersionedResults(t *testing.T) {
	body := "[" + goodEvent + `,{"id":"bad"}]`
	for _, tt := range []struct {
		version string
		want    int // results listed
	}{{"", 2}, {httpapi.V20261101, 2}, {httpapi.V20261201, 1}} {
		h := NewHandler(&recordingProducer{}, DefaultLimits, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		h.now = func() time.Time { return testNow } // the events are of November 2026
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
	h.now = func() time.Time { return testNow } // the events are of November 2026
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

// windowsOf is a fixed set of tenant windows; nil means not loaded yet.
type windowsOf map[string]time.Duration

func (w windowsOf) Window(tenant string) (time.Duration, bool) {
	if w == nil {
		return 0, false
	}
	return w[tenant], true
}

// Each tenant's records are checked against its own window: one second
// inside is accepted, one second outside is rejected with the reason, and
// the future skew is checked as well.
func TestHandlerTenantWindow(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	windows := windowsOf{"acme": 10 * 24 * time.Hour, "big": 60 * 24 * time.Hour}
	at := func(id string, ts time.Time) string {
		return `{"id":"` + id + `","customer":"c1","element":"api_calls","quantity":1,"time":"` + ts.Format(time.RFC3339Nano) + `"}`
	}
	body := strings.Join([]string{
		at("inside", now.Add(-10*24*time.Hour+time.Second)),
		at("edge", now.Add(-10*24*time.Hour)),
		at("outside", now.Add(-10*24*time.Hour-time.Second)),
		at("skew-edge", now.Add(DefaultLimits.MaxFutureSkew)),
		at("future", now.Add(DefaultLimits.MaxFutureSkew+time.Second)),
	}, "\n")
	tests := []struct {
		tenant string
		want   []string // status per record
	}{
		{"acme", []string{"accepted", "accepted", "rejected", "accepted", "rejected"}},
		{"big", []string{"accepted", "accepted", "accepted", "accepted", "rejected"}},
	}
	for _, tt := range tests {
		p := &recordingProducer{}
		h := NewHandler(p, DefaultLimits, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		h.now = func() time.Time { return now }
		h.UseWindows(windows)
		req := httptest.NewRequest(http.MethodPost, "/v1/usage", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		req = req.WithContext(tenant.With(req.Context(), tt.tenant))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp Response
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != http.StatusAccepted {
			t.Fatalf("%s: status %d: %s", tt.tenant, rec.Code, rec.Body)
		}
		accepted := 0
		for i, r := range resp.Results {
			if r.Status != tt.want[i] {
				t.Errorf("%s: record %s: %s, want %s (%+v)", tt.tenant, r.ID, r.Status, tt.want[i], r.Errors)
				continue
			}
			if r.Status == "accepted" {
				accepted++
				continue
			}
			reason := ""
			if len(r.Errors) == 1 && r.Errors[0].Field == "time" {
				reason = r.Errors[0].Reason
			}
			switch {
			case r.ID == "outside" && !strings.Contains(reason, "older than the tenant's duplicate-detection window of 10 days"):
				t.Errorf("%s: outside the window: reason %q", tt.tenant, reason)
			case r.ID == "future" && !strings.Contains(reason, "more than 1 day in the future"):
				t.Errorf("%s: future: reason %q", tt.tenant, reason)
			}
		}
		if len(p.msgs) != accepted {
			t.Errorf("%s: %d records stored, want the %d accepted", tt.tenant, len(p.msgs), accepted)
		}
	}
}

// Until the tenant windows are loaded, nothing is stored and the caller is
// told to retry.
func TestHandlerWindowsNotLoaded(t *testing.T) {
	p := &recordingProducer{}
	h := NewHandler(p, DefaultLimits, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.now = func() time.Time { return testNow } // the events are of November 2026
	h.UseWindows(windowsOf(nil))
	req := httptest.NewRequest(http.MethodPost, "/v1/usage", strings.NewReader(goodEvent))
	req = req.WithContext(tenant.With(req.Context(), "acme"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), "tenant_settings_unavailable") || len(p.msgs) != 0 {
		t.Fatalf("status %d, retry-after %q, %d stored: %s", rec.Code, rec.Header().Get("Retry-After"), len(p.msgs), rec.Body)
	}
}
