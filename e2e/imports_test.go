package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const importPrices = `{"tenants": {
  "bulk": {"currency": "JPY", "rounding": "half_up", "time_zone": "UTC", "any_customer": true,
           "prices": {"api_calls": "0.5"}}
}}`

// importTime is an event time inside the dedupe window whenever the test runs.
func importTime() string { return worldNow().Add(-2 * time.Hour).UTC().Format(time.RFC3339) }

// jobState mirrors the fields of jobs.View the tests read.
type jobState struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Total     uint64 `json:"total"`
	Processed uint64 `json:"processed"`
	Accepted  uint64 `json:"accepted"`
	Rejected  uint64 `json:"rejected"`
	Attempts  uint32 `json:"attempts"`
	Error     string `json:"error"`
}

// getJob reads a job as tenant (the --dev-insecure header).
func getJob(t *testing.T, baseURL, tenant, id string) (jobState, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/v1/jobs/"+id, nil)
	req.Header.Set("Kakin-Tenant", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return jobState{}, 0
	}
	defer resp.Body.Close()
	var j jobState
	_ = json.NewDecoder(resp.Body).Decode(&j)
	return j, resp.StatusCode
}

// upload posts body to /v1/usage/imports as tenant and returns the job id.
func upload(t *testing.T, baseURL, tenant, mode, contentType string, body io.Reader) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/v1/usage/imports?mode="+mode, body)
	req.Header.Set("Kakin-Tenant", tenant)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	var a struct {
		Job jobState `json:"job"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a.Job.ID
}

func waitJob(t *testing.T, baseURL, tenant, id string, timeout time.Duration) jobState {
	t.Helper()
	var j jobState
	waitFor(t, timeout, "job "+id+" to end", func() (bool, string) {
		j, _ = getJob(t, baseURL, tenant, id)
		return j.Status == "completed" || j.Status == "failed" || j.Status == "cancelled", fmt.Sprintf("%+v", j)
	})
	return j
}

// usageSend runs `kakin usage send` and returns its output and exit code.
func usageSend(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(shared.bin, append([]string{"usage", "send"}, args...)...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestImports sends files with `kakin usage send` through a whole pipeline:
// a partial import's valid records are rated, its invalid ones reported by
// line; an atomic import with an invalid record stores nothing and fails.
func TestImports(t *testing.T) {
	e := newEnv(t, importPrices)
	p := e.start("all", "all")
	ctx := context.Background()
	at := importTime()

	partial := filepath.Join(e.dir, "partial.csv")
	os.WriteFile(partial, []byte("id,customer,element,quantity,time,attr.region\n"+
		"p-1,k1,api_calls,10,"+at+",jp\n"+
		"p-2,k1,api_calls,-3,"+at+",jp\n"+ // line 3: negative
		"p-3,k2,api_calls,4,"+at+",\n"+
		"p-4,k2,api_calls,1,yesterday,\n"), 0o644) // line 5: bad time
	out, code := usageSend(t, "-f", partial, "--url", p.url, "--tenant", "bulk")
	if code != 0 || !strings.Contains(out, "completed: 4 records, 2 accepted, 2 rejected") ||
		!strings.Contains(out, "line 3 (p-2): quantity: must not be negative") || !strings.Contains(out, "line 5 (p-4): time:") ||
		!strings.Contains(out, "upload partial.csv [") {
		t.Fatalf("kakin usage send (partial): exit %d\n%s", code, out)
	}
	waitFor(t, 30*time.Second, "the partial import's records to be rated", func() (bool, string) {
		r, err := e.rated(ctx, "bulk")
		return err == nil && r.Lines == 2 && r.Amount.Equal(decimal.NewFromInt(7)), fmt.Sprintf("%+v %v", r, err)
	})

	atomic := filepath.Join(e.dir, "atomic.ndjson")
	os.WriteFile(atomic, []byte(
		`{"id":"a-1","customer":"k3","element":"api_calls","quantity":100,"time":"`+at+`"}`+"\n"+
			`{"id":"a-2","customer":"k3","element":"api_calls","quantity":"x","time":"`+at+`"}`+"\n"), 0o644)
	out, code = usageSend(t, "-f", atomic, "--mode", "atomic", "--url", p.url, "--tenant", "bulk", "--quiet")
	if code == 0 || !strings.Contains(out, "failed: 2 records, 0 accepted, 1 rejected") || !strings.Contains(out, "nothing was ingested") ||
		!strings.Contains(out, "line 2 (a-2): quantity:") {
		t.Fatalf("kakin usage send (atomic): exit %d\n%s", code, out)
	}
	time.Sleep(2 * time.Second) // would a-1 have been published, it would be rated by now
	if r, _ := e.rated(ctx, "bulk"); r.Lines != 2 {
		t.Errorf("after the failed atomic import rated_usage has %d lines, want 2", r.Lines)
	}
	if n := e.count(ctx, "SELECT count() FROM usage_unrated FINAL WHERE tenant = 'bulk'"); n != 0 {
		t.Errorf("%d unrated records", n)
	}

	// The imported records carry the upload's file name and job id into
	// usage_records; a record sent to the API carries neither.
	if code, _ := post(t, p.url, "bulk", []byte(`{"id":"api-1","customer":"k1","element":"api_calls","quantity":1,"time":"`+at+`"}`)); code != 202 {
		t.Fatalf("POST /v1/usage: %d", code)
	}
	waitFor(t, 30*time.Second, "the API record to be stored", func() (bool, string) {
		n := e.count(ctx, "SELECT count() FROM usage_records FINAL WHERE tenant = 'bulk' AND event_id = 'api-1'")
		return n == 1, fmt.Sprint(n)
	})
	jobOf := map[string]string{}
	rows, err := e.ch.Query(ctx, "SELECT event_id, import_file, import_job FROM usage_records FINAL WHERE tenant = 'bulk' ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, file, job string
		if err := rows.Scan(&id, &file, &job); err != nil {
			t.Fatal(err)
		}
		jobOf[id] = file + "|" + job
		if wantFile := map[string]string{"api-1": "", "p-1": "partial.csv", "p-3": "partial.csv"}[id]; file != wantFile ||
			(id == "api-1") != (job == "") || (job != "" && !strings.HasPrefix(job, "job_")) {
			t.Errorf("usage_records %s: import_file %q import_job %q", id, file, job)
		}
	}
	rows.Close()
	if len(jobOf) != 3 || jobOf["p-1"] != jobOf["p-3"] {
		t.Errorf("usage_records imports %v, want p-1 and p-3 of one job and api-1", jobOf)
	}
}

// TestImportResumesAfterKill kills (SIGKILL) the process running an import;
// another process takes the job over once its lease expired, resumes it from
// the last checkpoint, and every record is charged exactly once.
func TestImportResumesAfterKill(t *testing.T) {
	e := newEnv(t, importPrices)
	e.extraEnv = []string{"KAKIN_JOB_LEASE=2s", "KAKIN_RATE_INGEST_EVENTS=5000",
		"KAKIN_IMPORT_DIR=" + filepath.Join(e.dir, "imports")}
	a := e.start("ingest-a", "ingest")
	const n = 40000
	at := importTime()
	var b bytes.Buffer
	b.WriteString("id,customer,element,quantity,time\n")
	for i := range n {
		fmt.Fprintf(&b, "k-%d,cust-%d,api_calls,2,%s\n", i, i%50, at)
	}
	id := upload(t, a.url, "bulk", "partial", "text/csv", &b)
	var before jobState
	waitFor(t, 30*time.Second, "the import to be under way", func() (bool, string) {
		before, _ = getJob(t, a.url, "bulk", id)
		return before.Processed >= 12000, fmt.Sprintf("%+v", before)
	})
	a.kill()
	killedAt := time.Now()
	all := e.start("all", "all")
	j := waitJob(t, all.url, "bulk", id, 90*time.Second)
	if j.Status != "completed" || j.Accepted != n || j.Processed != n || j.Attempts != 1 {
		t.Fatalf("after the takeover: %+v", j)
	}
	t.Logf("killed at %d processed; taken over and completed %s later", before.Processed, time.Since(killedAt).Round(time.Millisecond))
	ctx := context.Background()
	waitFor(t, 60*time.Second, "every record to be rated once", func() (bool, string) {
		r, err := e.rated(ctx, "bulk")
		return err == nil && r.Lines == n && r.Amount.Equal(decimal.NewFromInt(n)), fmt.Sprintf("%+v %v; %s", r, err, e.lags(ctx))
	})
	// What was published twice (after the last checkpoint) is flagged, not charged.
	dups := e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = 'bulk'")
	t.Logf("records published twice after the takeover (flagged as duplicates): %d", dups)
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "imports", "bulk")); len(entries) != 0 {
		t.Errorf("spooled file not deleted: %v", entries)
	}
}

// importMB is the size of the generated file of TestImportMemory: 100 MiB
// (about 10 s on a 2-core machine), or KAKIN_E2E_IMPORT_MB.
func importMB() int {
	if v, err := strconv.Atoi(os.Getenv("KAKIN_E2E_IMPORT_MB")); err == nil && v > 0 {
		return v
	}
	return 100
}

// importRSSLimit is the peak resident memory the ingest process may reach
// while receiving and importing the file (VmHWM), whatever its size.
const importRSSLimit = 200 << 20

// TestImportMemory streams a generated CSV file (never on disk in the test:
// an io.Pipe) into a real ingest process and checks that every record was
// published and that the process's peak RSS stayed under importRSSLimit.
func TestImportMemory(t *testing.T) {
	e := newEnv(t, importPrices)
	e.extraEnv = []string{"KAKIN_RATE_INGEST_EVENTS=10000000", "KAKIN_IMPORT_DIR=" + filepath.Join(e.dir, "imports")}
	p := e.start("ingest", "ingest")
	target := int64(importMB()) << 20
	at := importTime()
	pr, pw := io.Pipe()
	var lines, size int64
	go func() {
		bw := &countingWriter{w: pw}
		buf := make([]byte, 0, 64<<10)
		buf = append(buf, "id,customer,element,quantity,time,contract,attr.region\n"...)
		for bw.n+int64(len(buf)) < target {
			buf = fmt.Appendf(buf, "evt-%010d,cust-%05d,api_calls,%d.%03d,%s,contract-%04d,ap-northeast-1\n",
				lines, lines%5000, lines%1000, lines%1000, at, lines%100)
			lines++
			if len(buf) > 60<<10 {
				if _, err := bw.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
		bw.Write(buf)
		size = bw.n
		pw.Close()
	}()
	start := time.Now()
	id := upload(t, p.url, "bulk", "partial", "text/csv", pr)
	uploaded := time.Since(start)
	j := waitJob(t, p.url, "bulk", id, 10*time.Minute)
	elapsed := time.Since(start)
	if j.Status != "completed" || j.Accepted != uint64(lines) || j.Rejected != 0 || j.Total != uint64(lines) {
		t.Fatalf("job %+v, want %d records accepted", j, lines)
	}
	hwm := vmHWM(t, p.cmd.Process.Pid)
	msg := fmt.Sprintf("import of %.1f MiB, %d records: upload %s, done after %s (%.0f records/s end to end); ingest process peak RSS (VmHWM) %.1f MiB (limit %d MiB)",
		float64(size)/(1<<20), lines, uploaded.Round(time.Millisecond), elapsed.Round(time.Millisecond),
		float64(lines)/elapsed.Seconds(), float64(hwm)/(1<<20), importRSSLimit>>20)
	t.Log(msg)
	fmt.Println("BENCH-IMPORT:", msg)
	if hwm > importRSSLimit {
		t.Errorf("peak RSS %d bytes over the limit of %d", hwm, importRSSLimit)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// vmHWM reads a process's peak resident set size.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
