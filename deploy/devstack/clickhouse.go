package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

const (
	// clickHouseReadyTimeout bounds how long StartClickHouse waits for Ping.
	clickHouseReadyTimeout = 30 * time.Second
	// clickHouseRestartTimeout bounds how long Restart waits: a server
	// killed under load loads and checks every part of its tables first,
	// which on a loaded box with a million rows takes well over 30s.
	clickHouseRestartTimeout = 3 * time.Minute
	// clickHouseConfig is the Debian package's server config; everything
	// that points outside the data dir is overridden on the command line.
	clickHouseConfig = "/etc/clickhouse-server/config.xml"
)

// ClickHouse is a clickhouse-server child process.
type ClickHouse struct {
	// Addr is the native protocol address, "127.0.0.1:port".
	Addr string
	// HTTPAddr is the HTTP interface address, "127.0.0.1:port".
	HTTPAddr string

	dir  string
	bin  string
	args []string // the same ports and paths on every (re)start

	mu   sync.Mutex
	proc *proc
}

// StartClickHouse starts clickhouse-server with data under dir on the given
// native and HTTP ports (0 = free port; the interserver port is always a
// free one), listening on 127.0.0.1 only. It waits until the server answers
// a native-protocol Ping as user "default" without password, else returns an
// error with the tail of dir/err.
func StartClickHouse(ctx context.Context, dir string, tcpPort, httpPort int) (*ClickHouse, error) {
	bin, err := findBinary("clickhouse-server")
	if err != nil {
		return nil, fmt.Errorf("start clickhouse: %w", err)
	}
	if dir, err = absDir(dir); err != nil {
		return nil, fmt.Errorf("start clickhouse: data dir: %w", err)
	}
	if _, err := os.Stat(clickHouseConfig); err != nil {
		return nil, fmt.Errorf("start clickhouse: %w", err)
	}
	if tcpPort != 0 && tcpPort == httpPort {
		return nil, fmt.Errorf("start clickhouse: tcp and http port are both %d", tcpPort)
	}
	// Our own users.xml: "default" without password from loopback only, and
	// poll_interval=1 so idle client connections notice SIGTERM within a
	// second (the default of 10s makes every Stop with an open pool take 10s).
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(clickHouseUsersXML), 0o644); err != nil {
		return nil, fmt.Errorf("start clickhouse: %w", err)
	}
	for attempt := 1; ; attempt++ {
		ports := []int{tcpPort, httpPort, 0}
		c, err := startClickHouseOn(ctx, bin, dir, ports, clickHouseConfig, nil)
		if err == nil {
			return c, nil
		}
		// A port FreePort chose was taken before the server bound it: again,
		// on fresh ones. A port the caller named is not changed.
		chosenTaken := false
		for i, p := range ports {
			if (i == 2 || []int{tcpPort, httpPort}[i] == 0) && strings.Contains(err.Error(), ":"+strconv.Itoa(p)) {
				chosenTaken = true
			}
		}
		if attempt == portAttempts || !portTaken(err) || !chosenTaken {
			return nil, fmt.Errorf("start clickhouse: %w", err)
		}
		_ = os.Remove(filepath.Join(dir, "err"))
	}
}

// startClickHouseOn starts the server on ports (native, http, interserver;
// 0 = a free port) with the given config file and extra command-line
// overrides.
func startClickHouseOn(ctx context.Context, bin, dir string, ports []int, config string, extra []string) (*ClickHouse, error) {
	clash := func(i int) bool {
		return slices.Contains(ports[:i], ports[i]) || slices.Contains(ports[i+1:], ports[i])
	}
	var err error
	for i := range ports {
		for ports[i] == 0 || clash(i) {
			if ports[i], err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	// Paths need their trailing slash: ClickHouse 18.16 concatenates them.
	d := dir + "/"
	c := &ClickHouse{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		dir:      dir,
		bin:      bin,
	}
	c.args = []string{
		"--config-file=" + config,
		"--",
		"--listen_host=127.0.0.1",
		"--tcp_port=" + strconv.Itoa(ports[0]),
		"--http_port=" + strconv.Itoa(ports[1]),
		"--interserver_http_port=" + strconv.Itoa(ports[2]),
		"--path=" + d,
		"--tmp_path=" + d + "tmp/",
		"--user_files_path=" + d + "user_files/",
		"--format_schema_path=" + d + "format_schemas/",
		"--logger.log=" + d + "log",
		"--logger.errorlog=" + d + "err",
		"--users_config=" + d + "users.xml",
	}
	c.args = append(c.args, extra...)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.start(ctx, clickHouseReadyTimeout); err != nil {
		return nil, err
	}
	return c, nil
}

// start launches the server with c.args and waits up to timeout until it
// answers; c.mu must be held.
func (c *ClickHouse) start(ctx context.Context, timeout time.Duration) error {
	// A live server on this dir holds an flock on dir/status and makes a new
	// one exit with "Another server instance in same directory is already
	// running". A stale file from a killed server is harmless.
	d := c.dir + "/"
	err := killLeftover(c.statusFile(), func(pid int) bool {
		argv := procCmdline(pid)
		return len(argv) > 0 && strings.Contains(argv[0], "clickhouse") && slices.Contains(argv, "--path="+d)
	})
	if err != nil {
		return err
	}
	p, err := startProc(c.bin, c.args, c.dir, c.stdoutFile())
	if err != nil {
		return err
	}
	c.proc = p
	if err := c.waitReady(ctx, timeout); err != nil {
		_ = p.kill()
		return fmt.Errorf("%w\n%s", err, c.logTail())
	}
	return nil
}

func (c *ClickHouse) statusFile() string { return filepath.Join(c.dir, "status") }
func (c *ClickHouse) errFile() string    { return filepath.Join(c.dir, "err") }
func (c *ClickHouse) stdoutFile() string { return filepath.Join(c.dir, "clickhouse.log") }

// logTail returns the tail of the error log and, when it says nothing, of
// the process's stdout/stderr (argument and config errors land there).
func (c *ClickHouse) logTail() string {
	s := "--- tail of " + c.errFile() + ":\n" + tailFile(c.errFile(), 4096)
	if fi, err := os.Stat(c.errFile()); err != nil || fi.Size() == 0 {
		s += "\n--- tail of " + c.stdoutFile() + ":\n" + tailFile(c.stdoutFile(), 2048)
	}
	return s
}

func (c *ClickHouse) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         []string{c.Addr},
		Auth:         clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout:  time.Second,
		ReadTimeout:  5 * time.Second,
		MaxOpenConns: 1,
		MaxIdleConns: 1,
	})
	if err != nil {
		return fmt.Errorf("open client: %w", err)
	}
	defer conn.Close()
	var last error
	for {
		if c.proc.exited() {
			return fmt.Errorf("clickhouse-server exited: %w", c.proc.exitError())
		}
		// Wait first: a native dial to a port nobody listens on yet fails
		// fast, and the server usually takes ~100-200ms to open its ports.
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse-server on %s not answering Ping: %w (last: %v)", c.Addr, ctx.Err(), last)
		case <-c.proc.done:
			continue
		case <-time.After(25 * time.Millisecond):
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		last = c.ping(pctx, conn)
		pcancel()
		if last == nil {
			return nil
		}
	}
}

// ping checks the server answers and that it is ours: a server that
// already held the port would answer while ours fails to bind and exits.
func (c *ClickHouse) ping(ctx context.Context, conn driver.Conn) error {
	if err := conn.Ping(ctx); err != nil {
		return err
	}
	var got string
	err := conn.QueryRow(ctx, "SELECT data_path FROM system.databases WHERE name = 'system'").Scan(&got)
	if err != nil {
		return fmt.Errorf("query data path: %w", err)
	}
	if want := c.dir + "/data/system/"; got != want {
		return fmt.Errorf("%s is answered by another clickhouse-server (data %s); port in use", c.Addr, got)
	}
	return nil
}

// Stop sends SIGTERM, waits up to 10s, then sends SIGKILL. Stopping a
// stopped server is a no-op.
func (c *ClickHouse) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	if err := c.proc.stop(stopTimeout); err != nil {
		return fmt.Errorf("stop clickhouse: %w", err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to exit (for fault tests).
func (c *ClickHouse) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	if err := c.proc.kill(); err != nil {
		return fmt.Errorf("kill clickhouse: %w", err)
	}
	return nil
}

// Restart starts the server again on the same ports and data directory
// (after Stop or Kill) and waits until it answers, like StartClickHouse.
func (c *ClickHouse) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil && !c.proc.exited() {
		return errors.New("restart clickhouse: still running; call Stop or Kill first")
	}
	if err := c.start(ctx, clickHouseRestartTimeout); err != nil {
		return fmt.Errorf("restart clickhouse: %w", err)
	}
	return nil
}

// clickHouseUsersXML is the Debian users.xml's default profile and quota
// plus poll_interval=1, with the default user limited to loopback.
const clickHouseUsersXML = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>10000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <poll_interval>1</poll_interval>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
