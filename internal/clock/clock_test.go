package clock

import (
	"testing"
	"time"
)

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"8760h", 8760 * time.Hour, false},
		{"-24h", -24 * time.Hour, false},
		{"1y", 0, true},
		{"365", 0, true},
	} {
		got, err := ParseOffset(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseOffset(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestNowIsMovedByTheOffset(t *testing.T) {
	before := time.Now()
	got := Now()
	after := time.Now()
	if got.Before(before.Add(Offset())) || got.After(after.Add(Offset())) {
		t.Fatalf("Now() = %v, want between %v and %v (offset %v)", got, before.Add(Offset()), after.Add(Offset()), Offset())
	}
}
