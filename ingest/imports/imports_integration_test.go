package imports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

var testLimits = ingest.Limits{MaxFutureSkew: 24 * time.Hour, MaxAge: 35 * 24 * time.Hour}

// fixture is an import service as a process of the ingest role runs it:
// the upload route, the job routes and a job runner.
type fixture struct {
	t      *testing.T
	store  *jobs.Store
	dir    string
	srv    *httptest.Server
	client *http.Client
	cfg    Config
}

type fixtureOpts struct {
	maxBytes    int64
	producer    ingest.Producer
	batch       int
	noRunner    bool
	maxReported uint64
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	conn := newDB(t)
	f := &fixture{t: t, store: jobs.NewStore(conn), dir: t.TempDir()}
	if o.maxBytes == 0 {
		o.maxBytes = 10 << 20
	}
	if o.producer == nil {
		w := stream.NewWriter(env.brokers, schemas.TopicRaw)
		t.Cleanup(func() { w.Close() })
		o.producer = w
	}
	log := slog.New(slog.DiscardHandler)
	f.cfg = Config{Dir: f.dir, MaxBytes: o.maxBytes, Producer: o.producer, Limits: testLimits, Batch: o.batch,
		CheckpointEvery: 50 * time.Millisecond, MaxReportedRecords: o.maxReported, Log: log}
	wake := func() {}
	if !o.noRunner {
		r := f.startRunner(f.cfg, "runner-a")
		wake = r.Wake
	}
	api := jobs.NewAPI(f.store, page.NewCodec([]byte("test"), 1000), log)
	mux := http.NewServeMux()
	as := func(h http.Handler) http.Handler { // the authenticated tenant: X-Test-Tenant
		return httpapi.WithVersion(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := auth.Principal{Tenant: r.Header.Get("X-Test-Tenant"), ClientID: "kc_tester", Scopes: auth.AllScopes}
			h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
		}))
	}
	mux.Handle("POST /v1/usage/imports", as(NewUploads(f.cfg, f.store, wake)))
	mux.Handle("GET /v1/jobs", as(http.HandlerFunc(api.List)))
	mux.Handle("GET /v1/jobs/count", as(http.HandlerFunc(api.Count)))
	mux.Handle("GET /v1/jobs/{jobId}", as(http.HandlerFunc(api.Get)))
	mux.Handle("GET /v1/jobs/{jobId}/errors", as(http.HandlerFunc(api.Errors)))
	mux.Handle("POST /v1/jobs/{jobId}/cancel", as(http.HandlerFunc(api.Cancel)))
	f.srv = httptest.NewServer(httpapi.NewObserver(log, prometheus.NewRegistry()).Wrap(mux))
	t.Cleanup(f.srv.Close)
	f.client = apitest.NewValidator(t).Client()
	return f
}

// startRunner runs an import job runner until the test ends or stop is called.
func (f *fixture) startRunner(cfg Config, owner string) *jobs.Runner {
	r, _ := f.startRunnerStoppable(cfg, owner)
	return r
}

func (f *fixture) startRunnerStoppable(cfg Config, owner string) (*jobs.Runner, func()) {
	r := jobs.NewRunner(jobs.Options{Store: f.store, Redis: env.rdb, LeaseTTL: time.Second, ScanInterval: 100 * time.Millisecond,
		Owner: owner, Log: cfg.Log})
	r.Register(Kind, NewImporter(cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return r, stop
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) do(req *http.Request, tenant string) reply {
	f.t.Helper()
	req.Header.Set("X-Test-Tenant", tenant)
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func (f *fixture) upload(tenant, mode, contentType string, body []byte, invalid bool) reply {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/usage/imports?mode="+mode, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if invalid { // a file with bad lines does not match the document, by design
		req = apitest.ExpectInvalidRequest(req)
	}
	return f.do(req, tenant)
}

func (f *fixture) get(tenant, path string, header ...string) reply {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return f.do(req, tenant)
}

func (f *fixture) accepted(r reply) Accepted {
	f.t.Helper()
	if r.status != http.StatusAccepted {
		f.t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var a Accepted
	if err := json.Unmarshal(r.body, &a); err != nil {
		f.t.Fatal(err)
	}
	if r.header.Get("Location") != "/v1/jobs/"+a.Job.ID || a.CheckImportStatus != "/v1/jobs/"+a.Job.ID {
		f.t.Errorf("Location %q checkImportStatus %q for job %s", r.header.Get("Location"), a.CheckImportStatus, a.Job.ID)
	}
	return a
}

// wait polls GET /v1/jobs/{id} until the job is final.
func (f *fixture) wait(tenant, id string) jobs.View {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := f.get(tenant, "/v1/jobs/"+id)
		var v jobs.View
		if r.status != 200 || json.Unmarshal(r.body, &v) != nil {
			f.t.Fatalf("GET job: %d %s", r.status, r.body)
		}
		if v.Status.Final() {
			return v
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("job %s not final after 30s: %s", id, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) report(tenant, id string) []jobs.LineError {
	f.t.Helper()
	r := f.get(tenant, "/v1/jobs/"+id+"/errors", "Accept", "application/x-ndjson")
	if r.status != 200 {
		f.t.Fatalf("error report: %d %s", r.status, r.body)
	}
	var out []jobs.LineError
	dec := json.NewDecoder(bytes.NewReader(r.body))
	for {
		var e jobs.LineError
		if err := dec.Decode(&e); err != nil {
			break
		}
		out = append(out, e)
	}
	return out
}

func lineNumbers(errs []jobs.LineError) []uint64 {
	var out []uint64
	for _, e := range errs {
		if len(out) == 0 || out[len(out)-1] != e.Line {
			out = append(out, e.Line)
		}
	}
	return out
}

func recent() string { return clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339) }

// The error report lists the first MaxReportedRecords rejected records and
// then one row saying it stops; the job still counts every rejected record
// and publishes every valid one.
func TestImportErrorReportIsCapped(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxReported: 2})
	ten := newTenant("capped")
	now := recent()
	lines := []string{"id,customer,element,quantity,time"} // line 1
	for i := range 6 {                                     // lines 2..7: bad, good, bad, good, ...
		if i%2 == 0 {
			lines = append(lines, fmt.Sprintf("bad-%d,c1,api_calls,-1,%s", i, now))
		} else {
			lines = append(lines, fmt.Sprintf("good-%d,c1,api_calls,1,%s", i, now))
		}
	}
	lines = append(lines, "bad-x,c1,api_calls,-2,"+now) // line 8
	a := f.accepted(f.upload(ten, "partial", "text/csv", []byte(strings.Join(lines, "\n")+"\n"), true))
	v := f.wait(ten, a.Job.ID)
	if v.Status != jobs.StatusCompleted || v.Accepted != 3 || v.Rejected != 4 || v.Processed != 7 {
		t.Errorf("job %+v, want completed with 3 accepted and 4 rejected of 7", v)
	}
	report := f.report(ten, a.Job.ID)
	if got := lineNumbers(report); !slices.Equal(got, []uint64{2, 4, 6}) {
		t.Fatalf("report lines %v, want [2 4 6] (two records, then where it stops): %+v", got, report)
	}
	last := report[len(report)-1]
	if last.RecordID != "" || !strings.Contains(last.Reason, "the error report stops here") || !strings.Contains(last.Reason, "first 2 rejected records") {
		t.Errorf("last row %+v, want the note that the report stops", last)
	}
}

func TestPartialImportPublishesValidRecordsAndReportsTheRest(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ten := newTenant("partial")
	now, old := recent(), clock.Now().Add(-40*24*time.Hour).UTC().Format(time.RFC3339)
	csv := strings.Join([]string{
		"id,customer,element,quantity,time,contract,attr.region", // line 1
		"e-1,c1,api_calls,10," + now + ",k-1,jp",                 // 2 good
		"e-2,c1,api_calls,-1," + now + ",,",                      // 3 negative quantity
		"",                                                       // 4 blank: skipped
		`"e-3","c2","api_calls","2.5",` + now + `,,"us, east"`, // 5 good, quoted
		"e-4,c2,api_calls,1," + old + ",,",                     // 6 older than the window
		"e-5,c3",                                               // 7 wrong field count
		"e-6,c3,transfer_gb,0.000000001," + now + ",,",         // 8 good
		"e-7,c3,bad element,1," + now + ",,",                   // 9 bad element and
	}, "\n") + "\n"
	a := f.accepted(f.upload(ten, "partial", "text/csv", []byte(csv), true))
	if a.Size != int64(len(csv)) || a.Job.Total != 7 || a.Job.Status != jobs.StatusPending {
		t.Errorf("202 answer %+v", a)
	}
	v := f.wait(ten, a.Job.ID)
	if v.Status != jobs.StatusCompleted || v.Accepted != 3 || v.Rejected != 4 || v.Processed != 7 || v.Total != 7 {
		t.Errorf("job %+v, want completed with 3 accepted, 4 rejected of 7", v)
	}
	report := f.report(ten, a.Job.ID)
	if got := lineNumbers(report); !slices.Equal(got, []uint64{3, 6, 7, 9}) {
		t.Errorf("report lines %v, want [3 6 7 9]: %+v", got, report)
	}
	if report[0].RecordID != "e-2" || report[0].Field != "quantity" || report[1].Field != "time" ||
		!strings.Contains(report[1].Reason, "older than") || report[2].RecordID != "e-5" {
		t.Errorf("report %+v", report)
	}
	// The CSV form of the same report.
	r := f.get(ten, "/v1/jobs/"+a.Job.ID+"/errors")
	if r.status != 200 || !strings.HasPrefix(string(r.body), "line,record_id,field,reason\n3,e-2,quantity,must not be negative\n") ||
		!strings.Contains(r.header.Get("Content-Disposition"), a.Job.ID+"-errors.csv") {
		t.Errorf("CSV report %d %q %q", r.status, r.header.Get("Content-Disposition"), r.body)
	}

	// usage.raw holds exactly the valid records, as the ingest handler writes them.
	var p Params
	_ = json.Unmarshal(v.Params, &p)
	msgs := rawMessages(t, ten)
	var ids []string
	for _, m := range msgs {
		var ev schemas.UsageEvent
		if err := schemas.UnmarshalEvent(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
		want, errs := ingest.ParseRecord(jsonOf(t, ev), ten, p.ReceivedAt, testLimits)
		if len(errs) > 0 {
			t.Fatalf("published record %s is not valid for POST /v1/usage: %v", ev.ID, errs)
		}
		// Every record names its import job (the bare body has no file name).
		if ev.Import == nil || ev.Import.Job != a.Job.ID || ev.Import.File != "" {
			t.Errorf("message %s: import %+v, want job %s and no file", ev.ID, ev.Import, a.Job.ID)
		}
		want.Import = &schemas.ImportSource{Job: a.Job.ID}
		if tenant, id, sum, ok := schemas.ParseRawHeaders(m.Headers); !ok || tenant != ten || id != ev.ID || sum != schemas.PayloadHash(&want) {
			t.Errorf("message %s: claim headers %q %q %x %v, want those of the record", ev.ID, tenant, id, sum, ok)
		}
		wantMsg, _ := ingest.Message(&want)
		if !bytes.Equal(m.Value, wantMsg.Value) || !bytes.Equal(m.Key, wantMsg.Key) || !m.Time.Equal(p.ReceivedAt.Truncate(time.Millisecond)) {
			t.Errorf("message %s: key %q time %s value %s; want key %q time %s value %s", ev.ID, m.Key, m.Time, m.Value, wantMsg.Key, p.ReceivedAt, wantMsg.Value)
		}
		if ev.ID == "e-3" && ev.Attributes["region"] != "us, east" {
			t.Errorf("e-3 attributes %v", ev.Attributes)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"e-1", "e-3", "e-6"}) {
		t.Errorf("usage.raw holds %v, want e-1 e-3 e-6", ids)
	}
	if _, err := os.Stat(filepath.Join(f.dir, ten, a.Job.ID+".csv")); !os.IsNotExist(err) {
		t.Errorf("the spooled file is still there after the job finished: %v", err)
	}
}

// jsonOf renders a published event back as the JSON record a client would send.
func jsonOf(t *testing.T, ev schemas.UsageEvent) []byte {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"id": ev.ID, "customer": ev.Customer, "element": ev.Element,
		"quantity": ev.Quantity.String(), "time": ev.Time.Format(time.RFC3339Nano), "contract": nilIfEmpty(ev.Contract),
		"attributes": ev.Attributes})
	return b
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ndjsonRecord(id, customer, quantity string) string {
	return fmt.Sprintf(`{"id":%q,"customer":%q,"element":"api_calls","quantity":%s,"time":%q}`, id, customer, quantity, recent())
}

func TestAtomicImportWithAnInvalidRecordIngestsNothing(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ten := newTenant("atomic")
	body := strings.Join([]string{
		ndjsonRecord("a-1", "c1", "1"),
		ndjsonRecord("a-2", "c1", `"-5"`),
		ndjsonRecord("a-3", "c2", "3"),
		`{"id":"a-4","customer":`,
		ndjsonRecord("a-5", "c2", "5"),
	}, "\n")
	a := f.accepted(f.upload(ten, "atomic", "application/x-ndjson", []byte(body), true))
	v := f.wait(ten, a.Job.ID)
	if v.Status != jobs.StatusFailed || v.Accepted != 0 || v.Rejected != 2 || !strings.Contains(v.Error, "nothing was ingested") {
		t.Errorf("job %+v, want failed, nothing accepted, 2 rejected", v)
	}
	if got := lineNumbers(f.report(ten, a.Job.ID)); !slices.Equal(got, []uint64{2, 4}) {
		t.Errorf("report lines %v, want [2 4]", got)
	}
	if msgs := rawMessages(t, ten); len(msgs) != 0 {
		t.Errorf("an atomic import with invalid records published %d records", len(msgs))
	}
}

func TestAtomicImportOfValidRecordsPublishesThemAll(t *testing.T) {
	f := newFixture(t, fixtureOpts{batch: 7})
	ten := newTenant("atomic-ok")
	var lines []string
	for i := range 50 {
		lines = append(lines, ndjsonRecord(fmt.Sprintf("ok-%d", i), fmt.Sprintf("c%d", i%4), fmt.Sprint(i)))
	}
	// As a multipart form, the mode in a form field.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("mode", "atomic")
	fw, _ := mw.CreateFormFile("file", "usage.ndjson")
	_, _ = fw.Write([]byte(strings.Join(lines, "\n") + "\n"))
	_ = mw.Close()
	a := f.accepted(f.upload(ten, "partial", mw.FormDataContentType(), body.Bytes(), false))
	v := f.wait(ten, a.Job.ID)
	if v.Status != jobs.StatusCompleted || v.Accepted != 50 || v.Rejected != 0 || v.Total != 50 {
		t.Errorf("job %+v", v)
	}
	var p Params
	_ = json.Unmarshal(v.Params, &p)
	if p.Mode != ModeAtomic || p.Format != FormatNDJSON || p.Filename != "usage.ndjson" {
		t.Errorf("params %+v", p)
	}
	msgs := rawMessages(t, ten)
	if len(msgs) != 50 {
		t.Errorf("usage.raw holds %d records, want 50", len(msgs))
	}
	for _, m := range msgs {
		var ev schemas.UsageEvent
		if err := schemas.UnmarshalEvent(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if want := (schemas.ImportSource{File: "usage.ndjson", Job: a.Job.ID}); ev.Import == nil || *ev.Import != want {
			t.Fatalf("record %s: import %+v, want %+v", ev.ID, ev.Import, want)
		}
	}
}

// TestBareUploadNamesItsFileInContentDisposition: a bare CSV body names its
// file as a multipart part does, and each published record carries that name
// and the job id (issue 19 item 9: rating groups by upload file).
func TestBareUploadNamesItsFileInContentDisposition(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ten := newTenant("bare-name")
	csv := "id,customer,element,quantity,time\nn-1,c1,api_calls,1," + recent() + "\nn-2,c2,api_calls,2," + recent() + "\n"
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/usage/imports", strings.NewReader(csv))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Content-Disposition", `attachment; filename="dir/March usage.csv"`)
	a := f.accepted(f.do(req, ten))
	v := f.wait(ten, a.Job.ID)
	var p Params
	_ = json.Unmarshal(v.Params, &p)
	if v.Status != jobs.StatusCompleted || v.Accepted != 2 || p.Filename != "March usage.csv" {
		t.Fatalf("job %+v params %+v", v, p)
	}
	msgs := rawMessages(t, ten)
	if len(msgs) != 2 {
		t.Fatalf("usage.raw holds %d records, want 2", len(msgs))
	}
	for _, m := range msgs {
		var ev schemas.UsageEvent
		if err := schemas.UnmarshalEvent(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if want := (schemas.ImportSource{File: "March usage.csv", Job: a.Job.ID}); ev.Import == nil || *ev.Import != want {
			t.Errorf("record %s: import %+v, want %+v", ev.ID, ev.Import, want)
		}
	}
}

func TestUploadRefusals(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxBytes: 2000, noRunner: true})
	ten := newTenant("refuse")
	good := "id,customer,element,quantity,time\ne-1,c,api_calls,1," + recent() + "\n"
	tests := []struct {
		name, mode, contentType, body string
		status                        int
		code                          string
	}{
		{"unknown column", "partial", "text/csv", "id,customer,element,quantity,time,colour\n", 400, "invalid_header"},
		{"missing column", "partial", "text/csv", "id,customer,quantity,time\ne,c,1,x\n", 400, "invalid_header"},
		{"no records", "partial", "text/csv", "id,customer,element,quantity,time\n\n", 400, "empty_file"},
		{"empty", "partial", "application/x-ndjson", "", 400, "empty_file"},
		{"too large", "partial", "text/csv", good + strings.Repeat("e-2,c,api_calls,1,"+recent()+"\n", 100), 413, "file_too_large"},
		{"bad mode", "sometimes", "text/csv", good, 400, "invalid_query"},
		{"unknown query parameter", "partial&format=csv", "text/csv", good, 400, "invalid_query"},
		{"not a file format", "partial", "application/xml", "<usage/>", 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		r := f.upload(ten, tt.mode, tt.contentType, []byte(tt.body), true)
		var p httpapi.Problem
		_ = json.Unmarshal(r.body, &p)
		if r.status != tt.status || p.Code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	left, _ := filepath.Glob(filepath.Join(f.dir, ten, "*"))
	if len(left) != 0 {
		t.Errorf("refused uploads left files behind: %v", left)
	}
	if n, _ := f.store.Count(context.Background(), ten, jobs.Filter{}); n != 0 {
		t.Errorf("refused uploads created %d jobs", n)
	}
}

func TestJobsAreTenantScoped(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	owner, other := newTenant("owner"), newTenant("other")
	a := f.accepted(f.upload(owner, "partial", "application/x-ndjson", []byte(ndjsonRecord("x-1", "c", "1")+"\n"+`{"id":"x-2"}`), true))
	f.wait(owner, a.Job.ID)
	for _, path := range []string{"/v1/jobs/" + a.Job.ID, "/v1/jobs/" + a.Job.ID + "/errors"} {
		if r := f.get(other, path); r.status != 404 || bytes.Contains(r.body, []byte("x-2")) {
			t.Errorf("GET %s as another tenant: %d %s", path, r.status, r.body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/jobs/"+a.Job.ID+"/cancel", nil)
	if r := f.do(req, other); r.status != 404 {
		t.Errorf("cancel as another tenant: %d %s", r.status, r.body)
	}
	if r := f.get(other, "/v1/jobs"); r.status != 200 || bytes.Contains(r.body, []byte(a.Job.ID)) {
		t.Errorf("another tenant's list: %d %s", r.status, r.body)
	}
	if r := f.get(other, "/v1/jobs/count"); string(bytes.TrimSpace(r.body)) != `{"count":0}` {
		t.Errorf("another tenant's count: %s", r.body)
	}
	if r := f.get(owner, "/v1/jobs?kind=usage_import&status=completed"); r.status != 200 || !bytes.Contains(r.body, []byte(a.Job.ID)) {
		t.Errorf("the owner's list: %d %s", r.status, r.body)
	}
	// The owner's jobs page by page (nextPage), newest first.
	var ids []string
	for range 2 {
		ids = append(ids, f.accepted(f.upload(owner, "partial", "application/x-ndjson", []byte(ndjsonRecord("y", "c", "1")), false)).Job.ID)
	}
	var listed []string
	for path := "/v1/jobs?pageSize=2"; path != ""; {
		r := f.get(owner, path)
		var pg jobs.Page
		if r.status != 200 || json.Unmarshal(r.body, &pg) != nil || len(pg.Jobs) > 2 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		for _, j := range pg.Jobs {
			listed = append(listed, j.ID)
		}
		path = ""
		if pg.NextPage != "" {
			path = "/v1/jobs?pageSize=2&nextPage=" + pg.NextPage
		}
	}
	if want := append(ids, a.Job.ID); !sameSet(listed, want) {
		t.Errorf("pages listed %v, want each of %v once", listed, want)
	}
	// Cancelling a finished job changes nothing.
	req, _ = http.NewRequest(http.MethodPost, f.srv.URL+"/v1/jobs/"+a.Job.ID+"/cancel", nil)
	if r := f.do(req, owner); r.status != 200 || !bytes.Contains(r.body, []byte(`"status":"completed"`)) {
		t.Errorf("cancel of a completed job: %d %s", r.status, r.body)
	}
}

// stallingProducer acknowledges the first n writes, each after a pause,
// then never answers (a process that hangs mid-import).
type stallingProducer struct {
	mu      sync.Mutex
	n       int
	acked   int // records acknowledged
	inner   ingest.Producer
	stalled chan struct{}
}

func (s *stallingProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	ok := s.n > 0
	s.n--
	if !ok && s.n == -1 {
		close(s.stalled)
	}
	s.mu.Unlock()
	if !ok {
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(20 * time.Millisecond)
	err := s.inner.WriteMessages(ctx, msgs...)
	if err == nil {
		s.mu.Lock()
		s.acked += len(msgs)
		s.mu.Unlock()
	}
	return err
}

// A run stopped halfway hands over; the next run resumes at the checkpoint:
// in the end every record is in usage.raw, and only those published after
// the last checkpoint were published twice.
func TestStoppedImportIsResumedFromItsCheckpoint(t *testing.T) {
	w := stream.NewWriter(env.brokers, schemas.TopicRaw)
	defer w.Close()
	f := newFixture(t, fixtureOpts{noRunner: true})
	ten := newTenant("resume")
	const n = 3000
	var b strings.Builder
	b.WriteString("id,customer,element,quantity,time\n")
	for i := range n {
		fmt.Fprintf(&b, "r-%d,c%d,api_calls,1,%s\n", i, i%7, recent())
	}
	a := f.accepted(f.upload(ten, "partial", "text/csv", []byte(b.String()), false))

	cfg := f.cfg
	cfg.Batch = 100
	stall := &stallingProducer{n: 12, inner: w, stalled: make(chan struct{})}
	cfg.Producer = stall
	_, stopA := f.startRunnerStoppable(cfg, "runner-a")
	select {
	case <-stall.stalled:
	case <-time.After(20 * time.Second):
		t.Fatal("the first run never got to its 13th write")
	}
	stopA()
	mid, _ := f.store.Get(context.Background(), ten, a.Job.ID)
	if mid.Status != jobs.StatusProcessing || mid.Worker != "" || mid.Processed >= n || mid.Accepted == 0 || mid.Accepted > uint64(stall.acked) {
		t.Fatalf("after the first run (%d records acknowledged): %s processed %d accepted %d worker %q", stall.acked, mid.Status, mid.Processed, mid.Accepted, mid.Worker)
	}

	cfg.Producer = w
	f.startRunner(cfg, "runner-b")
	v := f.wait(ten, a.Job.ID)
	if v.Status != jobs.StatusCompleted || v.Accepted != n || v.Processed != n || v.Attempts != 0 {
		t.Fatalf("job %+v", v)
	}
	seen := map[string]int{}
	for _, m := range rawMessages(t, ten) {
		var ev schemas.UsageEvent
		_ = schemas.UnmarshalEvent(m.Value, &ev)
		seen[ev.ID]++
	}
	if len(seen) != n {
		t.Errorf("usage.raw holds %d distinct records, want %d", len(seen), n)
	}
	again := 0
	for _, c := range seen {
		again += c - 1
	}
	if want := stall.acked - int(mid.Accepted); again != want {
		t.Errorf("%d records published twice, want the %d acknowledged after the checkpoint", again, want)
	}
	t.Logf("checkpoint at %d records; %d acknowledged by then; %d published twice", mid.Accepted, stall.acked, again)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// The spool sweep deletes the files of finished jobs (left by a process that
// died before deleting them) and old files without a job (an upload whose
// process died before creating it); it keeps unfinished jobs' files, fresh
// files without a job (an upload still being written) and anything else.
func TestSweepSpool(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ten := newTenant("spool")
	done := f.accepted(f.upload(ten, "partial", "application/x-ndjson", []byte(ndjsonRecord("s-1", "c", "1")), false))
	if v := f.wait(ten, done.Job.ID); v.Status != jobs.StatusCompleted {
		t.Fatalf("job %+v, want completed", v)
	}
	finishedPath := spoolPath(f.dir, ten, done.Job.ID, FormatNDJSON)
	if _, err := os.Stat(finishedPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the finished job's file is still there (%v): the runner should have deleted it", err)
	}
	// A job that stays pending: its store row exists, no runner takes it.
	pending, err := f.store.Create(context.Background(), jobs.Job{Tenant: ten, ID: jobs.NewID(), Kind: Kind,
		Params: json.RawMessage(`{"format":"ndjson"}`), Checkpoint: json.RawMessage(`{}`), CreatedBy: "kc_tester"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	write := func(path string, age time.Duration) string {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return path
	}
	finished := write(finishedPath, 2*time.Hour) // as if its process died before deleting it
	orphanOld := write(spoolPath(f.dir, ten, jobs.NewID(), FormatCSV), SpoolGrace+time.Minute)
	orphanFresh := write(spoolPath(f.dir, ten, jobs.NewID(), FormatCSV), SpoolGrace-time.Minute)
	unfinished := write(spoolPath(f.dir, ten, pending.ID, FormatNDJSON), 2*time.Hour)
	other := write(filepath.Join(f.dir, ten, "notes.txt"), 2*time.Hour)

	im := NewImporter(f.cfg)
	n, err := im.SweepSpool(context.Background(), f.store, now)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{finished: false, orphanOld: false, orphanFresh: true, unfinished: true, other: true} {
		_, err := os.Stat(path)
		if exists := err == nil; exists != want {
			t.Errorf("%s exists after the sweep: %v, want %v", filepath.Base(path), exists, want)
		}
	}
	if n != 2 || testutil.ToFloat64(im.c.Metrics.spoolSwept) != 2 {
		t.Errorf("sweep deleted %d files (metric %v), want 2", n, testutil.ToFloat64(im.c.Metrics.spoolSwept))
	}
}
