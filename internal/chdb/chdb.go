// Package chdb opens Kakin's ClickHouse connection and applies the versioned
// schema migrations kept in package schemas.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/schemas"
)

// Config locates a ClickHouse server and Kakin's database on it.
type Config struct {
	Addr     string // native protocol, host:port
	Database string
	User     string
	Password string
	// Cluster, when set, names the ClickHouse cluster (remote_servers) the
	// tables live on: Migrate creates replicated local tables and
	// Distributed tables ON CLUSTER (cluster.go), and connections insert
	// through the Distributed tables synchronously
	// (insert_distributed_sync = 1), so an insert returns only once every
	// shard's replica has its rows, never from a local spool.
	Cluster string
}

// Open connects to cfg.Database (which must exist; see CreateDatabase).
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	return open(ctx, cfg, cfg.Database)
}

func open(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:            []string{cfg.Addr},
		Auth:            clickhouse.Auth{Database: database, Username: cfg.User, Password: cfg.Password},
		DialTimeout:     5 * time.Second,
		ReadTimeout:     60 * time.Second,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
		Settings:        settings(cfg),
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: ping: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Migrate creates the database if needed and applies every migration not yet
// recorded in kakin_migrations, in version order. Running it again, or from
// two processes at once, is harmless: every statement is idempotent.
func Migrate(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Cluster != "" {
		return migrateCluster(ctx, cfg, log)
	}
	boot, err := open(ctx, cfg, "default")
	if err != nil {
		return err
	}
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(cfg.Database))
	boot.Close()
	if err != nil {
		return fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	conn, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS kakin_migrations (
		version UInt32, name String, applied_at DateTime
	) ENGINE = ReplacingMergeTree() ORDER BY version`); err != nil {
		return fmt.Errorf("create kakin_migrations: %w", err)
	}
	applied := map[uint32]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM kakin_migrations")
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
			if err := conn.Exec(ctx, stmt); err != nil && !columnAlreadyAdded(stmt, err) {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO kakin_migrations (version, name, applied_at)")
		if err != nil {
			return err
		}
		if err := batch.Append(uint32(m.Version), m.Name, time.Now()); err != nil {
			return err
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		log.Info("applied clickhouse migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

// settings are the connection settings of cfg.
func settings(cfg Config) clickhouse.Settings {
	if cfg.Cluster == "" {
		return nil
	}
	return clickhouse.Settings{"insert_distributed_sync": 1}
}

// columnAlreadyAdded reports whether err says that the column an ADD COLUMN
// statement adds exists already. ClickHouse 18.16 has no ADD COLUMN IF NOT
// EXISTS, so this is what makes such a statement idempotent (a migration run
// twice, or by two processes at once).
func columnAlreadyAdded(stmt string, err error) bool {
	var ex *clickhouse.Exception
	return schemas.AddsColumn(stmt) && errors.As(err, &ex) && ex.Code == 44 && // ILLEGAL_COLUMN
		strings.Contains(ex.Message, "already exists")
}

// quoteIdent quotes s as a ClickHouse identifier: in backquotes, with
// backslashes and backquotes escaped by a backslash, so no name (the
// --clickhouse-database setting) can end the identifier and append SQL.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(s) + "`"
}
