package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
)

// Ping asks the broker itself every time: right after the broker stops it
// fails, although a moment before it answered (kafka-go's client answers
// metadata requests from a cache up to 6 s old, which made /readyz report a
// stopped broker as fine). It answers within its own bound.
func TestPingAsksTheBroker(t *testing.T) {
	needKafka(t)
	// A bound for a loaded 2-core box; Ping's own timeout is shorter.
	const bound = 10 * time.Second
	tests := []struct {
		name string
		// brokers returns the addresses to ping; it may warm Ping up first.
		brokers func(t *testing.T) []string
		wantOK  bool
	}{
		{name: "running broker", wantOK: true, brokers: func(t *testing.T) []string { return brokers }},
		{name: "one of two brokers answers", wantOK: true, brokers: func(t *testing.T) []string {
			return []string{deadAddr(t), brokers[0]}
		}},
		{name: "nothing listening", brokers: func(t *testing.T) []string { return []string{deadAddr(t)} }},
		{name: "broker stopped right after it answered", brokers: func(t *testing.T) []string {
			k, err := devstack.StartKafka("", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			if err := stream.Ping(ctx, k.Addrs); err != nil {
				t.Fatalf("ping of the running broker: %v", err)
			}
			k.Close()
			return k.Addrs
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs := tt.brokers(t)
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			start := time.Now()
			err := stream.Ping(ctx, addrs)
			took := time.Since(start)
			if (err == nil) != tt.wantOK {
				t.Errorf("Ping(%v) = %v, want ok %v", addrs, err, tt.wantOK)
			}
			if took >= bound {
				t.Errorf("Ping took %v", took)
			}
		})
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}
