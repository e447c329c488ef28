package chdb

import (
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/schemas"
)

// Every statement of every migration has a cluster form, every table a
// shard key, and the forms name only qualified tables.
func TestClusterStatementsCoverEveryMigration(t *testing.T) {
	ms, err := schemas.ClickHouseMigrations()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		for _, stmt := range m.Statements {
			out, err := ClusterStatements(stmt, "kakin", "db")
			if err != nil {
				t.Errorf("migration %04d: %v", m.Version, err)
				continue
			}
			for _, s := range out {
				n++
				if !strings.Contains(s, " ON CLUSTER `kakin`") {
					t.Errorf("migration %04d: not ON CLUSTER: %.100q", m.Version, s)
				}
				if strings.Contains(s, "FROM ") && !strings.Contains(s, "FROM `db`.") {
					t.Errorf("migration %04d: unqualified FROM: %.200q", m.Version, s)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no statements")
	}
	out, err := ClusterStatements("CREATE TABLE IF NOT EXISTS rated_usage (a String, customer String, tenant String) ENGINE = ReplacingMergeTree(version)\nORDER BY (tenant, customer)", "c", "db")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CREATE TABLE IF NOT EXISTS `db`.rated_usage_local ON CLUSTER `c` (a String, customer String, tenant String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/rated_usage_local', '{replica}', version)\nORDER BY (tenant, customer)",
		"CREATE TABLE IF NOT EXISTS `db`.rated_usage ON CLUSTER `c` AS `db`.rated_usage_local ENGINE = Distributed(`c`, `db`, rated_usage_local, cityHash64(tenant, customer))",
	}
	if len(out) != 2 || out[0] != want[0] || out[1] != want[1] {
		t.Errorf("got\n%q\nwant\n%q", out, want)
	}
	if _, err := ClusterStatements("CREATE TABLE IF NOT EXISTS new_table (tenant String) ENGINE = MergeTree() ORDER BY tenant", "c", "db"); err == nil {
		t.Error("a table without a shard key was accepted")
	}
}
