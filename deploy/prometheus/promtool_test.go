// Package prometheus holds Kakin's alert rules (kakin-alerts.yml), their
// unit tests (tests/*.test.yml) and the compose stack's scrape
// configuration. The Go tests run promtool over them.
package prometheus

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// promtool returns the path of promtool (Debian's prometheus package, which
// `make deps` installs), or skips the test when it is not installed.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus, or make deps): the alert rules were not checked")
	}
	return path
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	t.Logf("promtool %v:\n%s", args, out)
}

// TestAlertRules checks the rule file's syntax and PromQL.
func TestAlertRules(t *testing.T) {
	run(t, "check", "rules", "kakin-alerts.yml")
}

// TestAlertRuleUnitTests runs the rules' unit tests: each alert fires on the
// failure it names, with its labels and annotations, and stays silent on the
// healthy case next to it.
func TestAlertRuleUnitTests(t *testing.T) {
	files, err := filepath.Glob("tests/*.test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule unit tests under tests/ (%v)", err)
	}
	run(t, append([]string{"test", "rules"}, files...)...)
}

// TestScrapeConfig checks the compose stack's Prometheus configuration
// (syntax only: the rule file it names is where compose mounts it).
func TestScrapeConfig(t *testing.T) {
	run(t, "check", "config", "--syntax-only", "prometheus.yml")
}
