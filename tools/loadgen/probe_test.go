package loadgen

import (
	"testing"
	"time"
)

// A probe's latency is reported between the last poll that missed it and
// the first that returned it.
func TestProbeLatencyBounds(t *testing.T) {
	s := newProbeSet()
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	s.add(Probe{ID: "a", Period: "2026-12"}, ms(0))
	s.add(Probe{ID: "b", Period: "2026-12"}, ms(100))
	s.add(Probe{ID: "c", Period: "2026-11"}, ms(0))
	s.markSeen("2026-12", nil, ms(50))            // misses a; b not sent yet
	s.markSeen("2026-12", []string{"a"}, ms(150)) // a seen; misses b
	s.markSeen("2026-12", nil, ms(250))           // misses b
	s.markSeen("2026-12", []string{"b"}, ms(350))
	up, lo, unseen := s.latencies()
	if unseen != 1 { // c: its period was never polled
		t.Fatalf("unseen %d, want 1", unseen)
	}
	wantUp := []time.Duration{150 * time.Millisecond, 250 * time.Millisecond}
	wantLo := []time.Duration{50 * time.Millisecond, 150 * time.Millisecond}
	for i := range wantUp {
		if up[i] != wantUp[i] || lo[i] != wantLo[i] {
			t.Fatalf("probe %d: [%v, %v], want [%v, %v]", i, lo[i], up[i], wantLo[i], wantUp[i])
		}
	}
}
