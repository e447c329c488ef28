package chdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/kakin-dev/kakin/schemas"
)

// LocalSuffix ends the name of a table's per-shard storage on a cluster:
// rated_usage is then the Distributed table every process reads and writes,
// and rated_usage_local the ReplicatedReplacingMergeTree it spreads over.
const LocalSuffix = "_local"

// customerSharded lists the tables sharded by (tenant, customer): every row
// of one dedupe key (the sorting key, which ReplacingMergeTree collapses
// and FINAL reads collapse) carries one customer, so all of a key's rows
// land on one shard and FINAL, which collapses only within a shard, stays
// exact. Every other table is sharded by tenant (its keys all start with
// tenant). A new table must be added here or to tenantSharded: the
// migration refuses a table it does not know.
var customerSharded = map[string]bool{
	"rated_usage": true, "usage_duplicates": true, "usage_unrated": true,
	"usage_records": true, "usage_status": true, "usage_daily": true,
}

// tenantSharded lists the tables sharded by tenant alone. The catalogue
// tables must be: an entity's revisions (and the materialized views fed
// from them) must stay on one shard even if a contract's customer changes.
var tenantSharded = map[string]bool{
	"tenants": true, "api_clients": true, "audit_log": true,
	"jobs": true, "job_errors": true, "job_cancels": true, "closed_periods": true,
	"catalog_entities": true, "catalog_current": true, "catalog_log": true, "catalog_heads": true,
	"tenant_keys": true, "report_deletions": true, "tenant_data_limits": true,
	// Receivables (0008): by tenant, every key starts with it. A billing run
	// reads a tenant's rated lines through the Distributed tables.
	"receivables": true, "receivable_lines": true, "billing_runs": true,
	"billing_reconciliation": true, "billing_period_events": true, "billing_settings": true,
}

// ShardKey is the Distributed sharding expression of table, or an error for
// a table the cluster layout does not know.
func ShardKey(table string) (string, error) {
	switch {
	case customerSharded[table]:
		return "cityHash64(tenant, customer)", nil
	case tenantSharded[table]:
		return "cityHash64(tenant)", nil
	}
	return "", fmt.Errorf("table %s has no shard key (internal/chdb/cluster.go)", table)
}

var (
	createTableRe = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+) \((.*)\) ENGINE = (\w*MergeTree)\(([^)]*)\)(.*)$`)
	createMVRe    = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\s+(.*)$`)
	createViewRe  = regexp.MustCompile(`(?s)^CREATE VIEW IF NOT EXISTS (\w+) AS\s+(.*)$`)
	addColumnRe   = regexp.MustCompile(`(?s)^ALTER TABLE (\w+) (ADD COLUMN .*)$`)
	fromRe        = regexp.MustCompile(`\bFROM (\w+)`)
	notInRe       = regexp.MustCompile(`\) NOT IN \(SELECT`)
)

// ClusterStatements rewrites one single-node migration statement for the
// cluster named cluster and database db:
//
//   - CREATE TABLE t … ENGINE = XMergeTree(args) becomes t_local ON CLUSTER
//     with ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/t_local',
//     '{replica}', args), plus t ON CLUSTER AS t_local with
//     ENGINE = Distributed(cluster, db, t_local, ShardKey(t));
//   - a materialized view reads and writes the local tables (it fires on the
//     shard the Distributed table sent the block to, and its target is
//     sharded the same way);
//   - a view reads the Distributed tables, with GLOBAL NOT IN for a
//     subquery (a distributed subquery inside a distributed query is
//     refused otherwise);
//   - ALTER TABLE t ADD COLUMN alters t_local ON CLUSTER, then drops and
//     creates t again AS t_local: ClickHouse 18.16 refuses an ALTER ON
//     CLUSTER of a Distributed table over replicated shards ("isn't
//     replicated, but shard is replicated"). A Distributed table holds no
//     data (inserts are synchronous, see Config.Cluster), so this loses
//     nothing; a process that reads or writes t in that instant gets an
//     error and retries, as after any ClickHouse error.
//
// Every name is qualified with db: ON CLUSTER queries run on other servers.
func ClusterStatements(stmt, cluster, db string) ([]string, error) {
	q := quoteIdent(db) + "."
	on := " ON CLUSTER " + quoteIdent(cluster)
	stmt = strings.TrimSpace(stmt)
	if m := createTableRe.FindStringSubmatch(stmt); m != nil {
		name, cols, engine, args, rest := m[1], m[2], m[3], strings.TrimSpace(m[4]), m[5]
		key, err := ShardKey(name)
		if err != nil {
			return nil, err
		}
		local := name + LocalSuffix
		rargs := quoteString("/clickhouse/tables/{shard}/"+db+"/"+local) + ", '{replica}'"
		if args != "" {
			rargs += ", " + args
		}
		return []string{
			"CREATE TABLE IF NOT EXISTS " + q + local + on + " (" + cols + ") ENGINE = Replicated" + engine + "(" + rargs + ")" + rest,
			distributed(q, on, cluster, db, name, key),
		}, nil
	}
	if m := createMVRe.FindStringSubmatch(stmt); m != nil {
		sel := fromRe.ReplaceAllString(m[3], "FROM "+q+"${1}"+LocalSuffix)
		return []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS " + q + m[1] + on + " TO " + q + m[2] + LocalSuffix + " AS " + sel}, nil
	}
	if m := createViewRe.FindStringSubmatch(stmt); m != nil {
		sel := fromRe.ReplaceAllString(m[2], "FROM "+q+"${1}")
		sel = notInRe.ReplaceAllString(sel, ") GLOBAL NOT IN (SELECT")
		return []string{"CREATE VIEW IF NOT EXISTS " + q + m[1] + on + " AS " + sel}, nil
	}
	if m := addColumnRe.FindStringSubmatch(stmt); m != nil && schemas.AddsColumn(stmt) {
		key, err := ShardKey(m[1])
		if err != nil {
			return nil, err
		}
		return []string{
			"ALTER TABLE " + q + m[1] + LocalSuffix + on + " " + m[2],
			"DROP TABLE IF EXISTS " + q + m[1] + on,
			distributed(q, on, cluster, db, m[1], key),
		}, nil
	}
	return nil, fmt.Errorf("no cluster form for statement: %.80q", stmt)
}

// distributed is the CREATE of Distributed table name over name_local.
func distributed(q, on, cluster, db, name, key string) string {
	return "CREATE TABLE IF NOT EXISTS " + q + name + on + " AS " + q + name + LocalSuffix +
		" ENGINE = Distributed(" + quoteIdent(cluster) + ", " + quoteIdent(db) + ", " + name + LocalSuffix + ", " + key + ")"
}

// migrateCluster is Migrate for cfg.Cluster: the database, kakin_migrations
// (replicated to every server of the cluster, one ZooKeeper path for all
// shards) and each migration's statements rewritten by ClusterStatements,
// all ON CLUSTER. Every server of the cluster must be up: an ON CLUSTER
// query waits for each (distributed_ddl_task_timeout, 180 s by default).
func migrateCluster(ctx context.Context, cfg Config, log *slog.Logger) error {
	boot, err := open(ctx, cfg, "default")
	if err != nil {
		return err
	}
	defer boot.Close()
	on := " ON CLUSTER " + quoteIdent(cfg.Cluster)
	q := quoteIdent(cfg.Database) + "."
	if err := boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(cfg.Database)+on); err != nil {
		return fmt.Errorf("create database %s on cluster %s: %w", cfg.Database, cfg.Cluster, err)
	}
	if err := boot.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+q+"kakin_migrations"+on+` (
		version UInt32, name String, applied_at DateTime
	) ENGINE = ReplicatedReplacingMergeTree(`+quoteString("/clickhouse/tables/all/"+cfg.Database+"/kakin_migrations")+`, '{replica}') ORDER BY version`); err != nil {
		return fmt.Errorf("create kakin_migrations on cluster %s: %w", cfg.Cluster, err)
	}
	applied := map[uint32]bool{}
	rows, err := boot.Query(ctx, "SELECT version FROM "+q+"kakin_migrations")
	if err != nil {
		return fmt.Errorf("read kakin_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	migrations, err := schemas.ClickHouseMigrations()
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[uint32(m.Version)] {
			continue
		}
		for _, stmt := range m.Statements {
			cstmts, err := ClusterStatements(stmt, cfg.Cluster, cfg.Database)
			if err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			for _, s := range cstmts {
				if err := boot.Exec(ctx, s); err != nil && !clusterColumnAlreadyAdded(s, err) {
					return fmt.Errorf("migration %04d_%s on cluster %s: %w", m.Version, m.Name, cfg.Cluster, err)
				}
			}
		}
		batch, err := boot.PrepareBatch(ctx, "INSERT INTO "+q+"kakin_migrations (version, name, applied_at)")
		if err != nil {
			return err
		}
		if err := batch.Append(uint32(m.Version), m.Name, time.Now()); err != nil {
			return err
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		log.Info("applied clickhouse migration on cluster", "cluster", cfg.Cluster, "version", m.Version, "name", m.Name)
	}
	return nil
}

// clusterColumnAlreadyAdded is columnAlreadyAdded for an ON CLUSTER ADD
// COLUMN: the servers' errors come back inside one message, so it looks for
// the text.
func clusterColumnAlreadyAdded(stmt string, err error) bool {
	if !strings.Contains(stmt, " ADD COLUMN ") || strings.Contains(stmt, ",") {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == 44 {
		return strings.Contains(ex.Message, "already exists")
	}
	return strings.Contains(err.Error(), "already exists")
}

// quoteString quotes s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
