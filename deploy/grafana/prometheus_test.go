package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
)

// checkWithPrometheus runs a real Prometheus (Debian's prometheus package)
// that scrapes the running Kakin every second and evaluates the alert rules,
// then checks that every rule evaluates without error and every dashboard
// query executes. It skips when the prometheus binary is not installed
// (promtool alone is enough for the rest).
func checkWithPrometheus(ctx context.Context, t *testing.T, k *kakin) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install prometheus): rules and dashboards were not evaluated against a live scrape")
	}
	dir := t.TempDir()
	rules, err := filepath.Abs(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	target := strings.TrimPrefix(k.base, "http://")
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: kakin
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("prometheus log (tail):\n%s", b)
		}
	}()
	api := func(path string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v)
	}

	// Wait until the target is scraped and every rule was evaluated twice
	// (rate() needs two samples).
	type ruleState struct {
		Name           string
		Health         string
		LastError      string
		LastEvaluation time.Time
	}
	var rulesAns struct {
		Status string
		Data   struct {
			Groups []struct{ Rules []ruleState }
		}
	}
	started := time.Now()
	deadline := started.Add(90 * time.Second)
	var last string
	for {
		time.Sleep(time.Second)
		var up struct {
			Data struct{ Result []struct{ Value []any } }
		}
		ok := api("/api/v1/query?query="+url.QueryEscape(`up{job="kakin"}`), &up) == nil &&
			len(up.Data.Result) == 1 && up.Data.Result[0].Value[1] == "1"
		if ok && api("/api/v1/rules", &rulesAns) == nil && rulesAns.Status == "success" {
			all := len(rulesAns.Data.Groups) > 0
			for _, g := range rulesAns.Data.Groups {
				for _, r := range g.Rules {
					all = all && r.LastEvaluation.After(started.Add(3*time.Second)) && r.Health != "unknown"
				}
			}
			if all {
				break
			}
			last = "rules not all evaluated yet"
		} else {
			last = "target not scraped yet"
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: %s after 90 s", last)
		}
	}
	n := 0
	for _, g := range rulesAns.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	t.Logf("prometheus evaluated %d rules on a live scrape of kakin", n)

	// Every dashboard query executes; the flow panels have data.
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, e := range dashboardExprs(t) {
		q := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "5m").Replace(e.query)
		q = asPromQL(q)
		var ans struct {
			Status string
			Error  string
			Data   struct {
				Result []json.RawMessage
			}
		}
		if err := api("/api/v1/query?time="+now+"&query="+url.QueryEscape(q), &ans); err != nil {
			t.Errorf("%s: %v", e.where, err)
			continue
		}
		if ans.Status != "success" {
			t.Errorf("%s: %q: %s", e.where, q, ans.Error)
		}
	}
	var flow struct {
		Data struct{ Result []json.RawMessage }
	}
	if err := api("/api/v1/query?query="+url.QueryEscape(`sum by (stage) (kakin_stage_records_total)`), &flow); err != nil || len(flow.Data.Result) < 4 {
		t.Errorf("records per stage on the live scrape: %d series (%v), want ingest, dedupe, rater, aggregator", len(flow.Data.Result), err)
	}
}
