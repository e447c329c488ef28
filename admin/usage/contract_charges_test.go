package usage

import (
	"testing"

	"github.com/kakin-dev/kakin/catalog"
)

// The billing month of a day and its bounds follow the rater's periods: a
// closing day d runs a period from day d+1 of the previous month to day d,
// named by the month it ends in.
func TestBillingMonths(t *testing.T) {
	tests := []struct {
		day                string
		closing            int
		month, prev        string
		start, end         string // of the month containing day
		prevStart, prevEnd string
	}{
		{"2026-04-15", 0, "202604", "202603", "2026-04-01", "2026-04-30", "2026-03-01", "2026-03-31"},
		{"2026-01-01", 0, "202601", "202512", "2026-01-01", "2026-01-31", "2025-12-01", "2025-12-31"},
		{"2026-04-20", 20, "202604", "202603", "2026-03-21", "2026-04-20", "2026-02-21", "2026-03-20"},
		{"2026-04-21", 20, "202605", "202604", "2026-04-21", "2026-05-20", "2026-03-21", "2026-04-20"},
		{"2026-12-25", 20, "202701", "202612", "2026-12-21", "2027-01-20", "2026-11-21", "2026-12-20"},
		// Closing day 28 after a common February: the period starts on 1 March.
		{"2026-03-10", 28, "202603", "202602", "2026-03-01", "2026-03-28", "2026-01-29", "2026-02-28"},
		{"2024-02-29", 28, "202403", "202402", "2024-02-29", "2024-03-28", "2024-01-29", "2024-02-28"},
	}
	for _, tt := range tests {
		d, err := catalog.ParseDate(tt.day)
		if err != nil {
			t.Fatal(err)
		}
		m := periodContaining(d, tt.closing)
		s, e := m.bounds(tt.closing)
		ps, pe := m.prev().bounds(tt.closing)
		if m.compact() != tt.month || m.prev().compact() != tt.prev || s.String() != tt.start || e.String() != tt.end ||
			ps.String() != tt.prevStart || pe.String() != tt.prevEnd {
			t.Errorf("%s closing %d: month %s [%s, %s], previous %s [%s, %s]; want %s [%s, %s], %s [%s, %s]", tt.day, tt.closing,
				m.compact(), s, e, m.prev().compact(), ps, pe, tt.month, tt.start, tt.end, tt.prev, tt.prevStart, tt.prevEnd)
		}
	}
}

func TestSplitItem(t *testing.T) {
	tests := []struct {
		item, fee string
		split     []string
	}{
		{"sc-1/base", "base", nil},
		{"sc-1/bw[500]", "bw", []string{"500"}},
		{"sc-1/bw[jp,500]", "bw", []string{"jp", "500"}},
		{"api_calls", "api_calls", nil}, // a price-list line: the item is the element
	}
	for _, tt := range tests {
		fee, split := splitItem("sc-1", tt.item)
		if fee != tt.fee || len(split) != len(tt.split) {
			t.Errorf("splitItem(%q) = %q %q, want %q %q", tt.item, fee, split, tt.fee, tt.split)
			continue
		}
		for i := range split {
			if split[i] != tt.split[i] {
				t.Errorf("splitItem(%q) = %q %q, want %q %q", tt.item, fee, split, tt.fee, tt.split)
			}
		}
	}
}
