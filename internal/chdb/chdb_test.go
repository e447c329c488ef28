package chdb

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/kakin-dev/kakin/deploy/devstack"
)

// Migrations re-applied from scratch (kakin_migrations lost, or two
// processes migrating at once) succeed: CREATE … IF NOT EXISTS is
// idempotent, and an ADD COLUMN whose column exists counts as applied.
func TestMigrateAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("needs clickhouse-server")
	}
	ctx := context.Background()
	if err := devstack.EnsureInstalled(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ch, err := devstack.StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop()
	cfg := Config{Addr: ch.Addr, Database: "migrate_again", User: "default"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := Migrate(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "DROP TABLE kakin_migrations"); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, cfg, log); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = 'migrate_again' AND table = 'tenants' AND name = 'dedupe_window_seconds'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("tenants.dedupe_window_seconds: %d columns, %v", n, err)
	}
	// Any other error of an ADD COLUMN still fails the migration.
	if columnAlreadyAdded("ALTER TABLE tenants ADD COLUMN x UInt8", os.ErrNotExist) {
		t.Error("a non-ClickHouse error counted as an existing column")
	}
	err = conn.Exec(ctx, "ALTER TABLE no_such_table ADD COLUMN x UInt8")
	if err == nil || columnAlreadyAdded("ALTER TABLE no_such_table ADD COLUMN x UInt8", err) {
		t.Errorf("missing table: %v counted as an existing column", err)
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kakin", "`kakin`"},
		{"auth_test", "`auth_test`"},
		{"a`; DROP DATABASE kakin; --", "`a\\`; DROP DATABASE kakin; --`"},
		{`a\`, "`a\\\\`"},
		{"a\\`b", "`a\\\\\\`b`"},
	}
	for _, tt := range tests {
		if got := quoteIdent(tt.in); got != tt.want {
			t.Errorf("quoteIdent(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
