package ingest

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
)

// fuzzMaxRecords keeps the fuzzed requests small; a body with more records
// must be refused whole (413).
const fuzzMaxRecords = 16

// FuzzUsageBody posts arbitrary bodies, as JSON and as NDJSON, to the usage
// handler. Whatever the body: no panic; a body that splitRecords cannot
// frame is refused whole (400/413) and nothing is written; otherwise every
// record is either accepted or rejected with at least one field error,
// accepted + rejected = records = results, exactly the accepted records are
// written, and each written message decodes (as dedupe and the rater read
// it) to the event ParseRecord gives for its record, whose re-encoding as a
// client record parses to the same event again.
func FuzzUsageBody(f *testing.F) {
	for _, seed := range []struct {
		body   string
		ndjson bool
	}{
		{goodEvent, false},
		{"[" + goodEvent + "," + goodEvent + "]", false},
		{goodEvent + "\n" + goodEvent + "\n\n", true},
		{`{"id":"e1","customer":"c1","element":"api_calls","quantity":1.5e3,"time":"2026-11-01T10:00:00.123456789+09:00","contract":"k","attributes":{"region":"jp","é":"\u2028"}}`, false},
		{`{"id":"e1","customer":"c1","element":"api_calls","quantity":"0.0000000001","time":"2026-11-01T10:00:00Z"}`, false},
		{`{"id":"e1","customer":"c1","element":"bad element","quantity":-1,"time":"2026-11-01","colour":"red"}`, false},
		{`{"id":1,"customer":null,"quantity":[1],"time":{},"attributes":{"a":1}}`, true},
		{"[" + goodEvent + "] x", false},
		{`[{"id":"a"},` + "\n" + `nope]`, false},
		{"not json\n" + goodEvent, true},
		{`"a string"`, false},
		{"", false},
		{"[]", false},
		{strings.Repeat(goodEvent+"\n", fuzzMaxRecords+1), true},
	} {
		f.Add([]byte(seed.body), seed.ndjson)
	}
	metrics := stream.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lim := DefaultLimits
	lim.MaxRecords = fuzzMaxRecords
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		p := &recordingProducer{}
		h := NewHandler(p, lim, metrics, log)
		h.now = func() time.Time { return testNow }
		req := httptest.NewRequest(http.MethodPost, "/v1/usage", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", map[bool]string{false: "application/json", true: "application/x-ndjson"}[ndjson])
		req = req.WithContext(tenant.With(req.Context(), "acme"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		raws, splitErr := splitRecords(body, ndjson, fuzzMaxRecords)
		if splitErr != nil || len(raws) == 0 {
			if rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("unframed body (%v) answered %d: %s", splitErr, rec.Code, rec.Body)
			}
			if len(p.msgs) != 0 {
				t.Fatalf("unframed body (%v) wrote %d messages", splitErr, len(p.msgs))
			}
			return
		}
		var resp Response
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer %d is not a usage response: %v\n%s", rec.Code, err, rec.Body)
		}
		if resp.Accepted+resp.Rejected != len(raws) || len(resp.Results) != len(raws) {
			t.Fatalf("%d records: accepted %d + rejected %d, %d results", len(raws), resp.Accepted, resp.Rejected, len(resp.Results))
		}
		if want := map[bool]int{true: http.StatusUnprocessableEntity, false: http.StatusAccepted}[resp.Accepted == 0]; rec.Code != want {
			t.Fatalf("accepted %d: status %d, want %d", resp.Accepted, rec.Code, want)
		}
		if len(p.msgs) != resp.Accepted {
			t.Fatalf("accepted %d, wrote %d messages", resp.Accepted, len(p.msgs))
		}
		written := 0
		for i, res := range resp.Results {
			ev, errs := ParseRecord(raws[i], "acme", testNow, lim)
			switch res.Status {
			case "rejected":
				if len(res.Errors) == 0 || len(errs) == 0 {
					t.Fatalf("record %d %s rejected without a field error", i, raws[i])
				}
				continue
			case "accepted":
				if len(res.Errors) != 0 || len(errs) != 0 {
					t.Fatalf("record %d %s accepted with errors %+v %+v", i, raws[i], res.Errors, errs)
				}
			default:
				t.Fatalf("record %d: status %q", i, res.Status)
			}
			msg := p.msgs[written]
			written++
			var stored schemas.UsageEvent // what dedupe and the rater read
			if err := schemas.UnmarshalEvent(msg.Value, &stored); err != nil {
				t.Fatalf("record %d: message %s does not decode: %v", i, msg.Value, err)
			}
			sameEvent(t, "message of "+string(raws[i]), stored, ev)
			tn, id, hash, ok := schemas.ParseRawHeaders(msg.Headers)
			if !ok || tn != ev.Tenant || id != ev.ID || hash != schemas.PayloadHash(&ev) {
				t.Fatalf("record %d: raw headers %q %q %x %v", i, tn, id, hash, ok)
			}
			again, errs := ParseRecord(reencode(t, ev), "acme", testNow, lim)
			if len(errs) != 0 {
				t.Fatalf("record %d: re-encoded %s rejected: %+v", i, reencode(t, ev), errs)
			}
			sameEvent(t, "re-encoding of "+string(raws[i]), again, ev)
		}
	})
}

// reencode writes ev as a client record.
func reencode(t *testing.T, ev schemas.UsageEvent) []byte {
	t.Helper()
	w := map[string]any{"id": ev.ID, "customer": ev.Customer, "element": ev.Element,
		"quantity": ev.Quantity.String(), "time": ev.Time.Format(time.RFC3339Nano)}
	if ev.Contract != "" {
		w["contract"] = ev.Contract
	}
	if ev.Attributes != nil {
		w["attributes"] = ev.Attributes
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameEvent fails unless got and want are the same event (equal quantities
// and instants, whatever their representation).
func sameEvent(t *testing.T, what string, got, want schemas.UsageEvent) {
	t.Helper()
	if got.Tenant != want.Tenant || got.ID != want.ID || got.Customer != want.Customer || got.Element != want.Element ||
		got.Contract != want.Contract || !got.Quantity.Equal(want.Quantity) || !got.Time.Equal(want.Time) ||
		!got.ReceivedAt.Equal(want.ReceivedAt) || !maps.Equal(got.Attributes, want.Attributes) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
