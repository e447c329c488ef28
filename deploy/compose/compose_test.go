// Package compose holds the single-host compose stack (compose.yaml). No
// container engine runs in CI: the test loads the file with compose-go, the
// compose specification's reference loader (schema validation,
// interpolation, merges, consistency of networks, volumes and dependencies),
// and checks what Kakin needs of it.
package compose

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/kakin-dev/kakin/app"
)

func load(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv([]string{}), // the defaults in the file, not this machine's environment
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

var roles = []string{"ingest", "dedupe", "rater", "aggregator", "admin"}

// TestComposeLoads loads the file and checks the stack's shape: the
// dependencies, one service per role started after the migration, the
// Kakin containers unprivileged, and every file mounted from the repository
// present.
func TestComposeLoads(t *testing.T) {
	p := load(t)
	if p.Name != "kakin" {
		t.Errorf("project name %q", p.Name)
	}
	for _, name := range []string{"kafka", "clickhouse", "redis", "keys", "migrate", "prometheus", "grafana"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	kafka, _ := p.GetService("kafka")
	if kafka.Environment["KAFKA_PROCESS_ROLES"] == nil || !strings.Contains(*kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Error("kafka is not in KRaft mode (KAFKA_PROCESS_ROLES with controller)")
	}

	migrate, _ := p.GetService("migrate")
	if !slices.Equal(migrate.Command, types.ShellCommand{"migrate"}) || migrate.Restart != "no" {
		t.Errorf("migrate: command %v restart %q, want a one-shot kakin migrate", migrate.Command, migrate.Restart)
	}
	for _, dep := range []string{"kafka", "clickhouse", "redis"} {
		if d, ok := migrate.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("migrate does not wait for %s to be healthy: %+v", dep, d)
		}
	}
	for _, name := range append([]string{"migrate"}, roles...) {
		s, err := p.GetService(name)
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if name != "migrate" {
			want := types.ShellCommand{"serve", "--roles=" + name}
			if !slices.Equal(s.Command, want) {
				t.Errorf("%s: command %v, want %v", name, s.Command, want)
			}
			if d, ok := s.DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not start after a successful migrate: %+v", name, s.DependsOn)
			}
		}
		if s.Build == nil || !strings.HasSuffix(filepath.ToSlash(s.Build.Dockerfile), "Dockerfile") {
			t.Errorf("%s: not built from the repository's Dockerfile: %+v", name, s.Build)
		}
		if s.User != "65532:65532" || !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || s.Privileged {
			t.Errorf("%s: user %q read_only %v cap_drop %v privileged %v: want unprivileged", name, s.User, s.ReadOnly, s.CapDrop, s.Privileged)
		}
		for _, env := range []string{"KAKIN_KAFKA_BROKERS", "KAKIN_REDIS_ADDR", "KAKIN_CLICKHOUSE_ADDR", "KAKIN_TOKEN_KEYS_FILE", "KAKIN_MASTER_KEY_FILE", "KAKIN_HTTP_ADDR"} {
			if v := s.Environment[env]; v == nil || *v == "" {
				t.Errorf("%s: %s not set", name, env)
			}
		}
		checkKafkaEnv(t, name, s.Environment)
		if !mounts(s, "kakin-keys", "/run/kakin-keys") {
			t.Errorf("%s: the keys volume is not mounted at /run/kakin-keys", name)
		}
	}
	ingest, _ := p.GetService("ingest")
	if !mounts(ingest, "kakin-imports", "/var/lib/kakin/imports") || *ingest.Environment["KAKIN_IMPORT_DIR"] != "/var/lib/kakin/imports" {
		t.Error("ingest: the import spool is not a volume")
	}

	// Bind mounts from the repository exist (a renamed file would start a
	// container with an empty directory in its place).
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount %s: %v", s.Name, v.Source, err)
			}
		}
	}
	graf, _ := p.GetService("grafana")
	if !mountsPath(graf, "/var/lib/grafana/dashboards/kakin") {
		t.Error("grafana: the dashboards are not provisioned")
	}
	prom, _ := p.GetService("prometheus")
	if !mountsPath(prom, "/etc/prometheus/kakin-alerts.yml") {
		t.Error("prometheus: the alert rules are not mounted")
	}
}

func mounts(s types.ServiceConfig, volume, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == volume && v.Target == target {
			return true
		}
	}
	return false
}

func mountsPath(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Target == target {
			return true
		}
	}
	return false
}

// TestComposeRejectsATypo proves the loader is strict: an unknown key in a
// service fails to load.
func TestComposeRejectsATypo(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "    command: [\"serve\", \"--roles=dedupe\"]", "    comand: [\"serve\", \"--roles=dedupe\"]", 1)
	if bad == string(b) {
		t.Fatal("the dedupe command line was not found")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")}, cli.WithWorkingDirectory(dir), cli.WithEnv([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "comand") {
		t.Fatalf("a misspelt key loaded: %v", err)
	}
}

// checkKafkaEnv parses a service's KAKIN_* environment (as loaded, the
// defaults of the file's variables) the way kakin does and validates its
// Kafka section: the TLS and SASL settings the file passes through must be
// ones a process starts with.
func checkKafkaEnv(t *testing.T, name string, env types.MappingWithEquals) {
	t.Helper()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if v := env[app.EnvName(f.Name)]; v != nil && strings.HasPrefix(f.Name, "kafka-") {
			if err := fs.Set(f.Name, *v); err != nil {
				t.Errorf("%s: %s=%q: %v", name, app.EnvName(f.Name), *v, err)
			}
		}
	})
	if err := cfg.Kafka.Validate(); err != nil {
		t.Errorf("%s: kafka settings: %v", name, err)
	}
}
