package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/deploy/devstack"
)

// takePort listens on a free loopback port for the test's duration, as
// another process would, and returns its address and port.
func takePort(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// `kakin dev` names the flag and environment variable that move each server
// of the local stack whose port is taken. Each case takes one port; the
// servers before it in the start order start on free ports.
func TestDevPortTakenNamesTheFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and clickhouse-server")
	}
	for _, b := range []string{"redis-server", "clickhouse-server"} {
		if !installed(b) {
			t.Skipf("%s not installed (run deploy/install-deps.sh)", b)
		}
	}
	// KAFKA_BROKERS would make kakin dev use an external broker.
	t.Setenv("KAFKA_BROKERS", "")
	os.Unsetenv("KAFKA_BROKERS")
	free := func(t *testing.T) string {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(p)
	}
	tests := []struct {
		name  string
		flag  string // the flag given the taken port
		form  string // host:port or bare port
		wants []string
	}{
		{name: "redis", flag: "redis-addr", form: "addr", wants: []string{"local Redis", "--redis-addr=HOST:PORT", "KAKIN_REDIS_ADDR=HOST:PORT"}},
		{name: "clickhouse native", flag: "clickhouse-addr", form: "addr", wants: []string{"local ClickHouse (native protocol)", "--clickhouse-addr=HOST:PORT", "KAKIN_CLICKHOUSE_ADDR=HOST:PORT"}},
		{name: "clickhouse http", flag: "clickhouse-http-port", form: "port", wants: []string{"ClickHouse's HTTP interface", "--clickhouse-http-port=PORT", "KAKIN_CLICKHOUSE_HTTP_PORT=PORT"}},
		{name: "kafka", flag: "kafka-brokers", form: "addr", wants: []string{"embedded Kafka broker", "--kafka-brokers=HOST:PORT", "KAKIN_KAFKA_BROKERS=HOST:PORT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every port the stack needs, free ones first, then the taken one.
			ports := map[string]string{}
			for _, f := range []string{"redis-addr", "clickhouse-addr", "clickhouse-http-port", "kafka-brokers"} {
				ports[f] = free(t)
			}
			taken, port := takePort(t)
			args := []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--log-level", "error"}
			for f, p := range ports {
				if f == tt.flag {
					p = strconv.Itoa(port)
				}
				if f != "clickhouse-http-port" {
					p = "127.0.0.1:" + p
				}
				args = append(args, "--"+f, p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := runDev(ctx, args)
			if err == nil {
				t.Fatal("kakin dev started with a taken port")
			}
			msg := err.Error()
			t.Logf("kakin dev: %.400s", msg)
			for _, want := range append(tt.wants, "already in use", taken) {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%.2000s", want, msg)
				}
			}
		})
	}
}

// installed reports whether a server binary is on PATH or where Debian
// puts servers (as devstack looks for it).
func installed(name string) bool {
	for _, d := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin") {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// Which failures are a taken address, and what each message says.
func TestListenErrorWording(t *testing.T) {
	bind := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	tests := []struct {
		name   string
		err    error
		inUse  bool
		listen []string // listenError's message holds these
	}{
		{name: "listen of this process", err: bind, inUse: true,
			listen: []string{"already in use", "--http-addr=HOST:PORT or KAKIN_HTTP_ADDR=HOST:PORT"}},
		{name: "a server's log tail", err: errors.New("redis-server exited: exit status 1\n--- tail: Could not create server TCP listening socket 127.0.0.1:16379: bind: Address already in use"), inUse: true,
			listen: []string{"already in use", "--http-addr"}},
		{name: "another server answers on the port", err: errors.New("127.0.0.1:16379 is answered by another redis-server (process_id:7); port in use"), inUse: true,
			listen: []string{"already in use"}},
		{name: "not a taken port", err: &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)},
			listen: []string{"cannot listen on 127.0.0.1:80", "set it with --http-addr=HOST:PORT or KAKIN_HTTP_ADDR=HOST:PORT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := app.AddrInUse(tt.err); got != tt.inUse {
				t.Errorf("addrInUse = %v, want %v", got, tt.inUse)
			}
			err := app.ListenError(tt.err, "the HTTP API", "127.0.0.1:80", "http-addr", "HOST:PORT")
			for _, want := range tt.listen {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("listenError: %q lacks %q", err, want)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("listenError does not wrap the cause")
			}
			// The local stack explains only a taken port; any other
			// failure of its servers is theirs to describe.
			dev := portInUseError(tt.err, tt.inUse, "the local Redis", 16379, "redis-addr", "HOST:PORT")
			if tt.inUse != strings.Contains(dev.Error(), "--redis-addr=HOST:PORT or KAKIN_REDIS_ADDR=HOST:PORT") || !errors.Is(dev, tt.err) {
				t.Errorf("portInUseError(inUse=%v) = %q", tt.inUse, dev)
			}
		})
	}
}
