package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// redisReadyTimeout bounds how long StartRedis and Restart wait for PING.
// A restart loads the whole AOF before it answers (-LOADING until then):
// measured 7-8 s for ~700,000 keys on a loaded 2-core machine, so the bound
// is well above that.
const redisReadyTimeout = time.Minute

// Redis is a redis-server child process.
type Redis struct {
	// Addr is "127.0.0.1:port".
	Addr string

	bin   string
	dir   string
	port  int
	extra []string // more arguments (cluster mode)

	mu   sync.Mutex
	proc *proc
}

// StartRedis starts redis-server bound to 127.0.0.1 on port (0 = pick a free
// port) with dir as its working dir. Persistence is appendonly yes with
// appendfsync always, as production runs the Redis that holds the rater's
// running state: a write is on disk before Redis answers, so a Kill loses
// nothing acknowledged. (With everysec a SIGKILL lost the last ~3 s of
// acknowledged writes on a loaded machine, found by the fault harness:
// docs/ARCHITECTURE.md "If Redis loses its data".) It waits until PING answers, else
// returns an error including the tail of dir/redis.log.
func StartRedis(ctx context.Context, dir string, port int) (*Redis, error) {
	return startRedis(ctx, dir, port, nil)
}

func startRedis(ctx context.Context, dir string, port int, extra []string) (*Redis, error) {
	bin, err := findBinary("redis-server")
	if err != nil {
		return nil, fmt.Errorf("start redis: %w", err)
	}
	if dir, err = absDir(dir); err != nil {
		return nil, fmt.Errorf("start redis: data dir: %w", err)
	}
	for attempt := 1; ; attempt++ {
		p, err := portOrFree(port)
		if err != nil {
			return nil, fmt.Errorf("start redis: %w", err)
		}
		r := &Redis{
			Addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(p)),
			bin:   bin,
			dir:   dir,
			port:  p,
			extra: extra,
		}
		r.mu.Lock()
		err = r.start(ctx)
		r.mu.Unlock()
		if err == nil {
			return r, nil
		}
		if port != 0 || attempt == portAttempts || !portTaken(err) {
			return nil, fmt.Errorf("start redis: %w", err)
		}
		// The free port was taken before redis-server bound it: again,
		// on another one, with a fresh log.
		_ = os.Remove(r.logFile())
	}
}

func (r *Redis) args() []string {
	return append([]string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--dir", r.dir,
		"--daemonize", "no",
		"--pidfile", r.pidFile(),
		"--logfile", "", // stdout, which is redis.log
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--save", "", // the AOF is the persistence; no RDB snapshots
		"--protected-mode", "yes",
	}, r.extra...)
}

func (r *Redis) pidFile() string { return filepath.Join(r.dir, "redis.pid") }
func (r *Redis) logFile() string { return filepath.Join(r.dir, "redis.log") }

// start launches the process and waits for PING; r.mu must be held.
func (r *Redis) start(ctx context.Context) error {
	err := killLeftover(r.pidFile(), func(pid int) bool {
		argv := procCmdline(pid)
		return len(argv) > 0 && strings.Contains(filepath.Base(argv[0]), "redis-server") && procCwd(pid) == r.dir
	})
	if err != nil {
		return err
	}
	p, err := startProc(r.bin, r.args(), r.dir, r.logFile())
	if err != nil {
		return err
	}
	r.proc = p
	if err := r.waitReady(ctx); err != nil {
		_ = p.kill()
		return fmt.Errorf("%w\n--- tail of %s:\n%s", err, r.logFile(), tailFile(r.logFile(), 4096))
	}
	return nil
}

func (r *Redis) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, redisReadyTimeout)
	defer cancel()
	var last error
	for {
		if r.proc.exited() {
			return fmt.Errorf("redis-server exited: %w", r.proc.exitError())
		}
		if last = redisPing(ctx, r.Addr, r.proc.cmd.Process.Pid); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s not answering PING: %w (last: %v)", r.Addr, ctx.Err(), last)
		case <-r.proc.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// redisPing sends PING and expects +PONG (a server still loading its AOF
// answers -LOADING, which counts as not ready). It then checks with INFO
// that the server answering is process pid, not another one that already
// held the port (the new one then fails to bind and exits).
func redisPing(ctx context.Context, addr string, pid int) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	// INFO answers a bulk string: $<len>\r\n<body>\r\n.
	line, err = br.ReadString('\n')
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	if err != nil || !strings.HasPrefix(line, "$") {
		return fmt.Errorf("INFO answered %q", strings.TrimSpace(line))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	want := "process_id:" + strconv.Itoa(pid)
	for l := range strings.Lines(string(body)) {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "process_id:") {
			if l != want {
				return fmt.Errorf("%s is answered by another redis-server (%s); port in use", addr, l)
			}
			return nil
		}
	}
	return errors.New("INFO server lacks process_id")
}

// Stop sends SIGTERM (Redis flushes the AOF and exits), waits up to 10s,
// then sends SIGKILL. Stopping a stopped server is a no-op.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	if err := r.proc.stop(stopTimeout); err != nil {
		return fmt.Errorf("stop redis: %w", err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to exit (for fault tests).
func (r *Redis) Kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	if err := r.proc.kill(); err != nil {
		return fmt.Errorf("kill redis: %w", err)
	}
	return nil
}

// Pause stops the server (SIGSTOP) without ending it: it answers nothing
// (clients, its primary, Sentinels) until Resume. For fault tests.
func (r *Redis) Pause() error { return r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() error { return r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.proc.exited() {
		return errors.New("redis: not running")
	}
	if err := r.proc.signalGroup(sig); err != nil {
		return fmt.Errorf("redis: %v: %w", sig, err)
	}
	return nil
}

// Restart starts it again on the same port and dir (after Stop or Kill).
func (r *Redis) Restart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil && !r.proc.exited() {
		return errors.New("restart redis: still running; call Stop or Kill first")
	}
	if err := r.start(ctx); err != nil {
		return fmt.Errorf("restart redis: %w", err)
	}
	return nil
}
