package devstack

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// A free port that another process takes before the server binds it (a
// second test run on the same machine) costs a retry on a fresh port, not a
// failed start. Here the first port handed out is held by a listener.
func TestStartRetriesATakenFreePort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	for _, tc := range []struct {
		name  string
		start func(ctx context.Context, dir string) (addr string, stop func() error, err error)
	}{
		{"redis", func(ctx context.Context, dir string) (string, func() error, error) {
			r, err := StartRedis(ctx, dir, 0)
			if err != nil {
				return "", nil, err
			}
			return r.Addr, r.Stop, nil
		}},
		{"clickhouse", func(ctx context.Context, dir string) (string, func() error, error) {
			c, err := StartClickHouse(ctx, dir, 0, 0)
			if err != nil {
				return "", nil, err
			}
			return c.Addr, c.Stop, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			taken := held.Addr().(*net.TCPAddr).Port
			handed := 0
			freePort = func() (int, error) {
				handed++
				if handed == 1 {
					return taken, nil
				}
				return FreePort()
			}
			defer func() { freePort = FreePort }()

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			addr, stop, err := tc.start(ctx, t.TempDir())
			if err != nil {
				t.Fatalf("start with the first free port taken: %v", err)
			}
			defer stop()
			if _, port, _ := net.SplitHostPort(addr); port == strconv.Itoa(taken) {
				t.Fatalf("serving on %s, the port that was taken", addr)
			}
			if handed < 2 {
				t.Fatalf("%d free ports handed out, want a second one after the taken port", handed)
			}
		})
	}
}
