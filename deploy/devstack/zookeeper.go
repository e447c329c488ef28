package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// zooKeeperReadyTimeout bounds how long StartZooKeeper waits for "imok": a
// JVM on a loaded 2-core machine takes a few seconds to start.
const zooKeeperReadyTimeout = time.Minute

// zooKeeperJar is where Debian's zookeeper package puts the server.
const zooKeeperJar = "/usr/share/java/zookeeper.jar"

// ErrNoZooKeeper is returned by StartZooKeeper when the zookeeper package
// (Debian's, /usr/share/java/zookeeper.jar) or java is not installed.
var ErrNoZooKeeper = errors.New("zookeeper is not installed (apt-get install zookeeper, or deploy/install-deps.sh)")

// ZooKeeper is a standalone ZooKeeper server child process (Debian's
// zookeeper package run by java), for ClickHouse's replicated tables.
type ZooKeeper struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Port is the client port.
	Port int

	dir  string
	java string
	args []string

	mu   sync.Mutex
	proc *proc
}

// StartZooKeeper starts a standalone ZooKeeper with its data under dir on a
// free port of 127.0.0.1 and waits until it answers "ruok" with "imok". It
// returns ErrNoZooKeeper (wrapped) when ZooKeeper is not installed.
func StartZooKeeper(ctx context.Context, dir string) (*ZooKeeper, error) {
	java, err := findBinary("java")
	if err != nil {
		return nil, fmt.Errorf("start zookeeper: %w: %w", ErrNoZooKeeper, err)
	}
	if _, err := os.Stat(zooKeeperJar); err != nil {
		return nil, fmt.Errorf("start zookeeper: %w: %w", ErrNoZooKeeper, err)
	}
	if dir, err = absDir(dir); err != nil {
		return nil, fmt.Errorf("start zookeeper: data dir: %w", err)
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("start zookeeper: %w", err)
		}
		cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
maxClientCnxns=0
`, filepath.Join(dir, "data"), port)
		if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("start zookeeper: %w", err)
		}
		z := &ZooKeeper{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Port: port,
			dir:  dir,
			java: java,
			args: []string{
				"-Xmx256m", "-Dzookeeper.log.dir=" + dir,
				"-cp", "/etc/zookeeper/conf:" + zooKeeperJar,
				"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(dir, "zoo.cfg"),
			},
		}
		z.mu.Lock()
		err = z.start(ctx)
		z.mu.Unlock()
		if err == nil {
			return z, nil
		}
		if attempt == portAttempts || !portTaken(err) {
			return nil, fmt.Errorf("start zookeeper: %w", err)
		}
	}
}

func (z *ZooKeeper) logFile() string { return filepath.Join(z.dir, "zookeeper.log") }

// start launches the server and waits for "imok"; z.mu must be held.
func (z *ZooKeeper) start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(z.dir, "data"), 0o755); err != nil {
		return err
	}
	p, err := startProc(z.java, z.args, z.dir, z.logFile())
	if err != nil {
		return err
	}
	z.proc = p
	ctx, cancel := context.WithTimeout(ctx, zooKeeperReadyTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-ctx.Done():
			_ = p.kill()
			return fmt.Errorf("zookeeper on %s not answering ruok: %w (last: %v)\n%s", z.Addr, ctx.Err(), last, tailFile(z.logFile(), 2048))
		case <-p.done:
			return fmt.Errorf("zookeeper exited: %w\n%s", p.exitError(), tailFile(z.logFile(), 2048))
		case <-time.After(100 * time.Millisecond):
		}
		if last = z.ruok(ctx); last == nil {
			return nil
		}
	}
}

// ruok sends the four-letter word "ruok" and expects "imok".
func (z *ZooKeeper) ruok(ctx context.Context) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", z.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if string(b) != "imok" {
		return fmt.Errorf("ruok answered %q", b)
	}
	return nil
}

// Stop sends SIGTERM, waits up to 10s, then SIGKILL.
func (z *ZooKeeper) Stop() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc == nil {
		return nil
	}
	if err := z.proc.stop(stopTimeout); err != nil {
		return fmt.Errorf("stop zookeeper: %w", err)
	}
	return nil
}
