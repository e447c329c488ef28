package billing

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
)

// runJob posts a billing run and waits (polling, with a deadline) for its
// job to finish; it returns the run's view.
func (e *env) runJob(ten, body string) RunView {
	e.t.Helper()
	code, out := e.do(ten, "POST", "/v1/billing-runs", body)
	if code != http.StatusAccepted {
		e.t.Fatalf("POST /v1/billing-runs: %d %s", code, out)
	}
	var v RunView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		code, out = e.do(ten, "GET", RunPath(v.ID), "")
		if code != http.StatusOK {
			e.t.Fatalf("GET run: %d %s", code, out)
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			e.t.Fatal(err)
		}
		if v.Status == "completed" || v.Status == "failed" {
			return v
		}
		time.Sleep(20 * time.Millisecond) // polling the job's status: an event wait with a deadline
	}
	e.t.Fatalf("run %s not finished: %s", v.ID, out)
	return v
}

// closeJob posts a close and waits (polling, with a deadline) for its job
// to finish; it returns the close's view.
func (e *env) closeJob(ten, body string) CloseJobView {
	e.t.Helper()
	code, out := e.do(ten, "POST", "/v1/billing-closes", body)
	if code != http.StatusAccepted {
		e.t.Fatalf("POST /v1/billing-closes: %d %s", code, out)
	}
	var v CloseJobView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatal(err)
	}
	if v.Status != "pending" || v.Period == "" || v.Job.Kind != "billing_close" {
		e.t.Fatalf("created close %s", out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		code, out = e.do(ten, "GET", ClosePath(v.ID), "")
		if code != http.StatusOK {
			e.t.Fatalf("GET close: %d %s", code, out)
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			e.t.Fatal(err)
		}
		if v.Status == "completed" || v.Status == "failed" {
			return v
		}
		time.Sleep(20 * time.Millisecond) // polling the job's status: an event wait with a deadline
	}
	e.t.Fatalf("close %s not finished: %s", v.ID, out)
	return v
}

// A close through the jobs API: 202 with the close, then its job's result
// shows the receivables finalised and the numbers given; the receivable is
// final with its number; closing again numbers nothing more; a bad period
// is 422.
func TestCloseJobRoute(t *testing.T) {
	e := newEnv(t)
	e.storeNovember()
	v := e.closeJob("acme", `{"period":"2026-11"}`)
	if v.Status != "completed" || v.Result == nil || v.Result.Finalised != 1 || v.Result.FirstSeq != 1 || v.Result.LastSeq != 1 ||
		v.Result.Lines != 9 || v.Job.Accepted != 1 || v.Job.Total != 1 {
		t.Fatalf("close %+v result %+v", v, v.Result)
	}
	id := billing.ReceivableID("acme", "b1", "2026-11")
	code, out := e.do("acme", "GET", "/v1/receivables/"+id, "")
	if code != 200 || !strings.Contains(out, `"status":"final"`) || !strings.Contains(out, `"total":"12063"`) {
		t.Fatalf("after the close job: %d %s", code, out)
	}
	if again := e.closeJob("acme", `{"period":"2026-11"}`); again.Status != "completed" || again.Result == nil ||
		again.Result.Finalised != 0 || again.Result.Frozen != 1 {
		t.Errorf("second close %+v %+v", again, again.Result)
	}
	if code, out := e.do("acme", "POST", "/v1/billing-closes", `{"period":"2026-13"}`); code != 422 || !strings.Contains(out, `"period"`) {
		t.Errorf("bad period: %d %s", code, out)
	}
	if code, out := e.do("acme", "POST", "/v1/billing-closes", `{"period":"2026-11","extra":1}`); code != 400 && code != 422 {
		t.Errorf("unknown field: %d %s", code, out)
	}
	run := e.runJob("acme", `{"period":"2026-10"}`)
	if code, _ := e.do("acme", "GET", ClosePath(run.ID), ""); code != 404 {
		t.Errorf("a billing run read as a close: %d", code)
	}
}

// The whole route set for one tenant: a run through the jobs API, the
// receivable, its lines, search and count with filters, the reconciliation
// as JSON and CSV, close with a number, void of a final receivable.
func TestReceivableRoutes(t *testing.T) {
	e := newEnv(t)
	e.storeNovember()
	v := e.runJob("acme", `{"period":"2026-11"}`)
	if v.Status != "completed" || v.Result == nil || v.Result.Receivables != 1 || v.Result.Lines != 9 ||
		!v.Result.Watermark.Equal(e.now) || v.Result.PeriodEnd.IsZero() {
		t.Fatalf("run %+v %+v", v, v.Result)
	}
	id := billing.ReceivableID("acme", "b1", "2026-11")
	code, out := e.do("acme", "GET", "/v1/receivables/"+id, "")
	if code != 200 || !strings.Contains(out, `"total":"12063"`) || !strings.Contains(out, `"status":"draft"`) {
		t.Fatalf("get: %d %s", code, out)
	}
	code, out = e.do("acme", "GET", "/v1/receivables/"+id+"/lines?pageSize=5", "")
	var lp struct {
		Items    []LineView `json:"items"`
		NextPage string     `json:"nextPage"`
	}
	if err := json.Unmarshal([]byte(out), &lp); code != 200 || err != nil || len(lp.Items) != 5 || lp.NextPage == "" {
		t.Fatalf("lines: %d %s", code, out)
	}
	code, out = e.do("acme", "GET", "/v1/receivables/"+id+"/lines?nextPage="+lp.NextPage, "")
	var lp2 struct {
		Items    []LineView `json:"items"`
		NextPage string     `json:"nextPage"`
	}
	if err := json.Unmarshal([]byte(out), &lp2); code != 200 || err != nil || len(lp2.Items) != 4 || lp2.NextPage != "" ||
		lp2.Items[3].Kind != "tax" || lp2.Items[3].Amount != "320" {
		t.Fatalf("lines page 2: %d %s", code, out)
	}
	for _, tt := range []struct {
		query string
		count string
	}{
		{"", "1"}, {"?period=2026-11", "1"}, {"?period=2026-10", "0"}, {"?customer=c1&status=draft", "1"},
		{"?status=final", "0"}, {"?min_total=12063&max_total=12063", "1"}, {"?min_total=12063.01", "0"},
		{"?basic_contract=b2", "0"},
	} {
		code, out := e.do("acme", "GET", "/v1/receivables/count"+tt.query, "")
		if code != 200 || out != `{"count":`+tt.count+"}\n" {
			t.Errorf("count%s: %d %s, want %s", tt.query, code, out, tt.count)
		}
		code, out = e.do("acme", "GET", "/v1/receivables"+tt.query, "")
		if code != 200 || (tt.count == "1") != strings.Contains(out, id) {
			t.Errorf("search%s: %d %s", tt.query, code, out)
		}
	}
	for _, bad := range []string{"?status=paid", "?period=2026-13", "?min_total=x", "?issued_from=yesterday", "?colour=red"} {
		if code, out := e.do("acme", "GET", "/v1/receivables"+bad, ""); code != 400 {
			t.Errorf("search%s: %d %s", bad, code, out)
		}
	}
	code, out = e.do("acme", "GET", RunPath(v.ID)+"/reconciliation", "")
	if code != 200 || !strings.Contains(out, `"outcome":"only_in_batch"`) {
		t.Errorf("reconciliation (no stream lines were stored): %d %s", code, out)
	}
	code, out = e.do("acme", "GET", RunPath(v.ID)+"/reconciliation?format=csv", "")
	if code != 200 || !strings.HasPrefix(out, "customer,charge_period,item,outcome,batch_amount,stream_amount\n") ||
		!strings.Contains(out, "c1,2026-11,k-api/api-calls,only_in_batch,1800,0\n") {
		t.Errorf("reconciliation csv: %d %s", code, out)
	}

	// Close: numbered, final; then void it with a reason.
	if code, out = e.do("acme", "PUT", "/v1/billing-settings", `{"number_format":"K-{seq:5}"}`); code != 200 {
		t.Fatalf("settings: %d %s", code, out)
	}
	code, out = e.do("acme", "POST", "/v1/billing-periods/2026-11/close", "")
	if code != 200 || !strings.Contains(out, `"finalised":1`) {
		t.Fatalf("close: %d %s", code, out)
	}
	if code, out = e.do("acme", "POST", "/v1/billing-runs", `{"period":"2026-11"}`); code != 202 {
		t.Fatalf("run of a closed period not accepted as a job: %d %s", code, out)
	}
	code, out = e.do("acme", "GET", "/v1/receivables/"+id, "")
	if code != 200 || !strings.Contains(out, `"number":"K-00001"`) || !strings.Contains(out, `"status":"final"`) {
		t.Fatalf("after close: %d %s", code, out)
	}
	if code, out = e.do("acme", "DELETE", "/v1/receivables/"+id, ""); code != 422 || !strings.Contains(out, `"reason"`) {
		t.Errorf("void without reason: %d %s", code, out)
	}
	if code, out = e.do("acme", "DELETE", "/v1/receivables/"+id, `{"reason":"issued to the wrong address"}`); code != 200 ||
		!strings.Contains(out, `"status":"voided"`) || !strings.Contains(out, `"number":"K-00001"`) {
		t.Errorf("void: %d %s", code, out)
	}
	if code, out = e.do("acme", "DELETE", "/v1/receivables/"+id, `{"reason":"again"}`); code != 409 {
		t.Errorf("second void: %d %s", code, out)
	}
	if code, out = e.do("acme", "POST", "/v1/billing-periods/2026-10/reopen", `{"reason":"x"}`); code != 409 {
		t.Errorf("reopen of a period never closed: %d %s", code, out)
	}
}

// Every route answers another tenant as if acme's data did not exist, and
// a request without a tenant is 401.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	e.storeNovember()
	v := e.runJob("acme", `{"period":"2026-11"}`)
	id := billing.ReceivableID("acme", "b1", "2026-11")
	for _, tt := range []struct {
		method, path, body string
		status             int
		body200            string
	}{
		{"GET", "/v1/receivables/" + id, "", 404, ""},
		{"GET", "/v1/receivables/" + id + "/lines", "", 404, ""},
		{"DELETE", "/v1/receivables/" + id, `{"reason":"x"}`, 404, ""},
		{"GET", "/v1/receivables", "", 200, `{"items":[]}` + "\n"},
		{"GET", "/v1/receivables/count", "", 200, `{"count":0}` + "\n"},
		{"GET", "/v1/receivables/preview?customer=c1&period=2026-11", "", 409, ""},
		{"GET", RunPath(v.ID), "", 404, ""},
		{"GET", RunPath(v.ID) + "/reconciliation", "", 404, ""},
		{"POST", "/v1/billing-periods/2026-11/reopen", `{"reason":"x"}`, 409, ""},
		{"GET", "/v1/billing-settings", "", 200, `{"number_format":"INV-{seq:8}"}` + "\n"},
	} {
		code, out := e.do("other", tt.method, tt.path, tt.body)
		if code != tt.status || tt.body200 != "" && out != tt.body200 {
			t.Errorf("other tenant %s %s: %d %s, want %d", tt.method, tt.path, code, out, tt.status)
		}
		if code, out := e.do("", tt.method, tt.path, tt.body); code != 401 {
			t.Errorf("no tenant %s %s: %d %s", tt.method, tt.path, code, out)
		}
	}
	// A close job of acme's is not another tenant's.
	cv := e.closeJob("acme", `{"period":"2026-10"}`)
	if code, out := e.do("other", "GET", ClosePath(cv.ID), ""); code != 404 {
		t.Errorf("other tenant GET %s: %d %s", ClosePath(cv.ID), code, out)
	}
	for _, m := range [][3]string{{"GET", ClosePath(cv.ID), ""}, {"POST", "/v1/billing-closes", `{"period":"2026-11"}`}} {
		if code, out := e.do("", m[0], m[1], m[2]); code != 401 {
			t.Errorf("no tenant %s %s: %d %s", m[0], m[1], code, out)
		}
	}
	// Another tenant's close job fails (it has no catalogue) and touches
	// nothing of acme's.
	if ov := e.closeJob("other", `{"period":"2026-11"}`); ov.Status != "failed" || !strings.Contains(ov.Job.Error, "no basic contracts") {
		t.Errorf("other tenant's close job: %+v", ov)
	}
	// Another tenant's close and run touch nothing of acme's.
	if code, out := e.do("other", "POST", "/v1/billing-periods/2026-11/close", ""); code != 409 || !strings.Contains(out, "no_catalogue") {
		t.Errorf("other tenant's close: %d %s", code, out)
	}
	if ov := e.runJob("other", `{"period":"2026-11"}`); ov.Status != "failed" {
		t.Errorf("other tenant's run: %+v", ov)
	}
	code, out := e.do("acme", "GET", "/v1/receivables/"+id, "")
	if code != 200 || !strings.Contains(out, `"status":"draft"`) {
		t.Errorf("acme's receivable after the other tenant's requests: %d %s", code, out)
	}
}

// A run of a customer group recomputes its members' receivables only; an
// unknown group fails the run; searches and counts filter by group.
func TestGroupRunsAndSearch(t *testing.T) {
	e := newEnv(t)
	e.storeNovember()
	if v := e.runJob("acme", `{"period":"2026-11","group":"g-none"}`); v.Status != "completed" || v.Result.Receivables != 0 {
		t.Fatalf("run of an empty group: %+v %+v", v, v.Result)
	}
	if v := e.runJob("acme", `{"period":"2026-11","group":"g-unknown"}`); v.Status != "failed" || !strings.Contains(v.Job.Error, "no such customer group") {
		t.Fatalf("run of an unknown group: %+v", v)
	}
	if v := e.runJob("acme", `{"period":"2026-11","group":"g-c1"}`); v.Status != "completed" || v.Result.Receivables != 1 {
		t.Fatalf("run of g-c1: %+v %+v", v, v.Result)
	}
	for _, tt := range []struct{ query, count string }{
		{"?group=g-c1", "1"}, {"?group=g-none", "0"}, {"?group=g-unknown", "0"}, {"?group=g-c1&period=2026-10", "0"},
	} {
		if code, out := e.do("acme", "GET", "/v1/receivables/count"+tt.query, ""); code != 200 || out != `{"count":`+tt.count+"}\n" {
			t.Errorf("count%s: %d %s, want %s", tt.query, code, out, tt.count)
		}
	}
	if code, out := e.do("acme", "POST", "/v1/billing-runs", `{"period":"2026-11","group":"a b"}`); code != 422 || !strings.Contains(out, `"group"`) {
		t.Errorf("bad group id: %d %s", code, out)
	}
}

// GET /v1/receivables/preview answers the live draft, computed by the run's
// code path: before any run it is what the run then writes (same id,
// total, lines); bad queries are 400, an unknown customer 404.
func TestPreviewRoute(t *testing.T) {
	e := newEnv(t)
	e.storeNovember()
	code, out := e.do("acme", "GET", "/v1/receivables/preview?customer=c1&period=2026-11", "")
	var p PreviewPage
	if err := json.Unmarshal([]byte(out), &p); code != 200 || err != nil || len(p.Items) != 1 {
		t.Fatalf("preview: %d %s", code, out)
	}
	pv := p.Items[0]
	if pv.Status != "preview" || pv.Total != "12063" || len(pv.LineItems) != 9 || pv.Lines != 9 {
		t.Fatalf("preview %+v", pv)
	}
	e.runJob("acme", `{"period":"2026-11"}`)
	code, out = e.do("acme", "GET", "/v1/receivables/"+pv.ID, "")
	var got ReceivableView
	if err := json.Unmarshal([]byte(out), &got); code != 200 || err != nil {
		t.Fatalf("get: %d %s", code, out)
	}
	pv.ReceivableView.Status, pv.ReceivableView.Revision = got.Status, got.Revision
	if gj, pj := jsonOf(t, got), jsonOf(t, pv.ReceivableView); gj != pj {
		t.Errorf("the run's receivable\n%s\nis not the preview\n%s", gj, pj)
	}
	code, out = e.do("acme", "GET", "/v1/receivables/"+pv.ID+"/lines", "")
	var lp struct {
		Items []LineView `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &lp); code != 200 || err != nil || jsonOf(t, lp.Items) != jsonOf(t, pv.LineItems) {
		t.Errorf("the run's lines\n%s\nare not the preview's\n%s", out, jsonOf(t, pv.LineItems))
	}
	for _, tt := range []struct {
		query  string
		status int
		code   string
	}{
		{"", 400, "customer"},
		{"?customer=c1&period=2026-13", 400, "period"},
		{"?customer=c1&colour=red", 400, "colour"},
		{"?customer=nobody&period=2026-11", 404, "not_found"},
		{"?basic_contract=b1&period=2026-11", 200, "12063"},
	} {
		if code, out := e.do("acme", "GET", "/v1/receivables/preview"+tt.query, ""); code != tt.status || !strings.Contains(out, tt.code) {
			t.Errorf("preview%s: %d %s, want %d with %q", tt.query, code, out, tt.status, tt.code)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
