package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed clickhouse/*.sql
var clickhouseFS embed.FS

// Migration is one versioned ClickHouse schema change. Every statement in it is
// idempotent (CREATE … IF NOT EXISTS; or ALTER TABLE … ADD COLUMN, which
// ClickHouse 18.16 cannot write with IF NOT EXISTS: the runner treats "column
// already exists" as applied, see AddsColumn), so applying it twice is harmless.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// ClickHouseMigrations returns the embedded migrations in version order.
func ClickHouseMigrations() ([]Migration, error) {
	files, err := fs.Glob(clickhouseFS, "clickhouse/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimPrefix(f, "clickhouse/"), ".sql")
		num, name, ok := strings.Cut(base, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", f)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version: %w", f, err)
		}
		body, err := clickhouseFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, Statements: splitStatements(string(body))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

// AddsColumn reports whether stmt is an ALTER TABLE that only adds one
// column: a statement the migration runner may treat as applied when the
// column exists already.
func AddsColumn(stmt string) bool {
	f := strings.Fields(strings.ToUpper(stmt))
	return len(f) >= 6 && f[0] == "ALTER" && f[1] == "TABLE" && f[3] == "ADD" && f[4] == "COLUMN" &&
		!strings.Contains(stmt, ",")
}

// splitStatements splits a SQL file on semicolons that end a line, dropping
// comment-only lines.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, stmt)
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
