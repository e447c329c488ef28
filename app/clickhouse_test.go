package app

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
)

// A process started while ClickHouse is down waits for it (the fault
// harness saw an aggregator started during a ClickHouse restart exit 25
// times in a row): opening succeeds once a server answers on the address,
// and gives up with a clear error only after the wait.
func TestOpenClickHouseWaitsForTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clickhouse-server")
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := chdb.Config{Addr: "127.0.0.1:" + strconv.Itoa(port), Database: "default", User: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var warned atomic.Int32
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		conn, err := openClickHouse(ctx, cfg, 3*time.Minute, func(string, ...any) { warned.Add(1) })
		if conn != nil {
			conn.Close()
		}
		done <- result{err}
	}()
	// Start the server only once the opener has failed at least once.
	for warned.Load() == 0 {
		select {
		case r := <-done:
			t.Fatalf("open returned before any server listened: %v", r.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	ch, err := devstack.StartClickHouse(ctx, t.TempDir(), port, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop()
	if r := <-done; r.err != nil {
		t.Fatalf("open after the server started: %v", r.err)
	}

	// Nobody listening for the whole wait: a clear error, not a hang.
	other, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = openClickHouse(ctx, chdb.Config{Addr: "127.0.0.1:" + strconv.Itoa(other), Database: "default", User: "default"}, time.Second, func(string, ...any) {})
	if err == nil || !strings.Contains(err.Error(), "did not answer within 1s") {
		t.Fatalf("open with nobody listening = %v, want a did-not-answer error", err)
	}
}
