package money

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestRound(t *testing.T) {
	tests := []struct {
		in     string
		places int32
		mode   Mode
		want   string
	}{
		{"2.5", 0, HalfUp, "3"},
		{"2.4999", 0, HalfUp, "2"},
		{"-2.5", 0, HalfUp, "-3"},
		{"2.5", 0, Down, "2"},
		{"2.999", 0, Down, "2"},
		{"-2.9", 0, Down, "-2"},
		{"2.001", 0, Up, "3"},
		{"2.000", 0, Up, "2"},
		{"-2.1", 0, Up, "-3"},
		{"1.005", 2, HalfUp, "1.01"},
		{"1.004999999", 2, HalfUp, "1.00"},
		{"1.009", 2, Down, "1.00"},
		{"1.001", 2, Up, "1.01"},
		{"0.0005", 3, HalfUp, "0.001"},
		{"12345678901234567890.5", 0, HalfUp, "12345678901234567891"},
	}
	for _, tt := range tests {
		got := Round(decimal.RequireFromString(tt.in), tt.places, tt.mode)
		if want := decimal.RequireFromString(tt.want); !got.Equal(want) {
			t.Errorf("Round(%s, %d, %s) = %s, want %s", tt.in, tt.places, tt.mode, got, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, ok := range []string{"half_up", "DOWN", " up "} {
		if _, err := ParseMode(ok); err != nil {
			t.Errorf("ParseMode(%q): %v", ok, err)
		}
	}
	if _, err := ParseMode("bankers"); err == nil {
		t.Error("ParseMode(bankers) = nil error, want error")
	}
}

func TestCurrency(t *testing.T) {
	jpy, err := LookupCurrency("jpy")
	if err != nil || jpy.Places != 0 {
		t.Fatalf("JPY = %+v, %v", jpy, err)
	}
	usd, _ := LookupCurrency("USD")
	if got := usd.Format(decimal.RequireFromString("3.5")); got != "3.50" {
		t.Errorf("USD format = %q, want 3.50", got)
	}
	if _, err := LookupCurrency("XXX"); err == nil {
		t.Error("unknown currency accepted")
	}
}
