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
			if !strings.Contains(s, "IF NOT EXISTS") {
				t.Errorf("migration %d: statement is not idempotent: %q", m.Version, s)
			}
		}
	}
	if got := len(ms[0].Statements); got != 3 {
		t.Errorf("0001 has %d statements, want 3", got)
	}
}
