package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// expr is one PromQL expression and where it is written.
type expr struct {
	where string
	query string
}

type target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards under dashboards/ (%v)", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// dashboardExprs returns every query of every dashboard: panel targets and
// query variables.
func dashboardExprs(t *testing.T) []expr {
	t.Helper()
	var out []expr
	var walk func(file string, ps []panel)
	walk = func(file string, ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, expr{fmt.Sprintf("%s panel %q target %s", file, p.Title, tg.RefID), tg.Expr})
			}
			walk(file, p.Panels)
		}
	}
	for f, d := range loadDashboards(t) {
		walk(f, d.Panels)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var q struct{ Query string }
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Fatalf("%s variable %s: %v", f, v.Name, err)
			}
			out = append(out, expr{fmt.Sprintf("%s variable %s", f, v.Name), q.Query})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].where < out[j].where })
	return out
}

const ruleFile = "../prometheus/kakin-alerts.yml"

// ruleExprs returns the expression of every alert and recording rule.
func ruleExprs(t *testing.T) []expr {
	t.Helper()
	b, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert  string
				Record string
				Expr   string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", ruleFile, err)
	}
	var out []expr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, expr{fmt.Sprintf("%s rule %s%s", ruleFile, r.Alert, r.Record), r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", ruleFile)
	}
	return out
}

// kakinMetric matches a Kakin metric name in PromQL. Every metric the
// dashboards and rules read is Kakin's own (prefix kakin_); the rest of an
// expression is functions, labels and values.
var kakinMetric = regexp.MustCompile(`\bkakin_[a-z0-9_]+\b`)

// namedMetrics returns the metric names the expressions read, with one place
// each is read.
func namedMetrics(exprs []expr) map[string]string {
	out := map[string]string{}
	for _, e := range exprs {
		for _, m := range kakinMetric.FindAllString(e.query, -1) {
			if _, ok := out[m]; !ok {
				out[m] = e.where
			}
		}
	}
	return out
}

// TestDashboards checks each dashboard's structure: a unique uid and title,
// panels on the 24-column grid that do not overlap, every panel querying
// the dashboard's datasource variable with at least one Kakin metric.
func TestDashboards(t *testing.T) {
	uids, titles := map[string]string{}, map[string]string{}
	for f, d := range loadDashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid and title are required", f)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %q already used by %s", f, d.UID, other)
		}
		uids[d.UID] = f
		if other, ok := titles[d.Title]; ok {
			t.Errorf("%s: title %q already used by %s", f, d.Title, other)
		}
		titles[d.Title] = f
		if filepath.Base(f) != d.UID+".json" {
			t.Errorf("%s: the file is named for the uid (%s.json)", f, d.UID)
		}
		hasDS := false
		for _, v := range d.Templating.List {
			hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource")
		}
		if !hasDS {
			t.Errorf("%s: no datasource variable", f)
		}
		ids := map[int]bool{}
		cells := map[[2]int]string{}
		n := 0
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", f, p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("%s panel %q: gridPos %+v off the 24-column grid", f, p.Title, g)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := cells[[2]int{x, y}]; ok {
						t.Errorf("%s panel %q overlaps %q at %d,%d", f, p.Title, other, x, y)
						x, y = g.X+g.W, g.Y+g.H
					}
					cells[[2]int{x, y}] = p.Title
				}
			}
			if p.Type == "row" {
				continue
			}
			n++
			if !strings.Contains(string(p.Datasource), `"${datasource}"`) {
				t.Errorf("%s panel %q: datasource is not ${datasource}: %s", f, p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s panel %q: no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				if !kakinMetric.MatchString(tg.Expr) {
					t.Errorf("%s panel %q target %s reads no Kakin metric: %q", f, p.Title, tg.RefID, tg.Expr)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no panels", f)
		}
	}
}

// grafanaVar matches a Grafana variable in a query: $name or ${name}.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// asPromQL turns a dashboard query into plain PromQL: Grafana's interval
// variables become durations, a template variable (used in =~ matchers)
// matches everything, label_values(m, l) becomes m.
func asPromQL(q string) string {
	if m := regexp.MustCompile(`^label_values\((\w+)\s*,\s*\w+\)$`).FindStringSubmatch(q); m != nil {
		return m[1]
	}
	return grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		switch grafanaVar.FindStringSubmatch(v)[1] {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		default:
			return ".*"
		}
	})
}

// TestDashboardPromQL parses every dashboard query with promtool, as the
// expressions of a rule file.
func TestDashboardPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus, or make deps): the dashboards' PromQL was not checked")
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	exprs := dashboardExprs(t)
	for i, e := range exprs {
		q, _ := json.Marshal(asPromQL(e.query)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      # %s\n      - record: dashboard:query_%d\n        expr: %s\n", e.where, i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query is not valid PromQL: %v\n%s\n(rule file:\n%s)", err, out, b.String())
	}
	t.Logf("%d dashboard queries parse", len(exprs))
}
