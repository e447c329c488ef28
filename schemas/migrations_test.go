package schemas

import (
	"strings"
	"testing"
)

func TestClickHouseMigrations(t *testing.T) {
	ms, err := ClickHouseMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations = %+v, want version 1 first", ms)
	}
	for _, m := range ms {
		for _, s := range m.Statements {
			if strings.Contains(s, ";") || strings.HasPrefix(s, "--") {
				t.Errorf("migration %d: statement not split cleanly: %q", m.Version, s)
			}
			if !strings.Contains(s, "IF NOT EXISTS") && !AddsColumn(s) {
				t.Errorf("migration %d: statement is not idempotent: %q", m.Version, s)
			}
		}
	}
	if got := len(ms[0].Statements); got != 3 {
		t.Errorf("0001 has %d statements, want 3", got)
	}
}

func TestAddsColumn(t *testing.T) {
	for stmt, want := range map[string]bool{
		"ALTER TABLE tenants ADD COLUMN w UInt32 DEFAULT 0":            true,
		"alter table tenants add column w UInt32":                      true,
		"ALTER TABLE tenants ADD COLUMN a UInt32, ADD COLUMN b UInt32": false, // two columns: half may be applied
		"ALTER TABLE tenants DROP COLUMN w":                            false,
		"CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Memory":       false,
		"ALTER TABLE tenants ADD COLUMN w UInt32 DEFAULT 0 AFTER name": true,
		"ALTER TABLE tenants MODIFY COLUMN w UInt64":                   false,
	} {
		if got := AddsColumn(stmt); got != want {
			t.Errorf("AddsColumn(%q) = %v, want %v", stmt, got, want)
		}
	}
}
