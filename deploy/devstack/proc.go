package devstack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long Stop waits after SIGTERM before sending SIGKILL.
const stopTimeout = 10 * time.Second

// FreePort returns a free TCP port on 127.0.0.1.
//
// The port is free when FreePort returns; another process may take it
// before the caller binds it.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portAttempts is how many times a server is started on fresh ports when a
// port FreePort chose was taken before the server bound it (another process,
// such as a second test run on the same machine, got there first).
const portAttempts = 5

// portTaken reports whether a failed start (its error carries the server's
// log tail) failed because a port was already in use.
func portTaken(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "address already in use")
}

// freePort is FreePort; tests replace it to hand out a port that is taken.
var freePort = FreePort

// portOrFree returns port, or a free port when port is 0.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	return freePort()
}

// proc is a child server process running in its own process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
	err  error         // result of cmd.Wait, valid after done is closed
}

// startProc starts bin with args in dir, stdout and stderr appended to
// logPath.
func startProc(bin string, args []string, dir, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy
	fmt.Fprintf(f, "--- %s devstack: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited and been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended; call only after done.
func (p *proc) exitError() error {
	if p.err != nil {
		return p.err
	}
	return errors.New("exited with status 0")
}

// signalGroup sends sig to the process group of p.
func (p *proc) signalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// stop sends SIGTERM, waits up to timeout, then sends SIGKILL and waits.
// It is a no-op when the process has already exited.
func (p *proc) stop(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.signalGroup(syscall.SIGTERM); err != nil {
		return fmt.Errorf("sigterm: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	return p.kill()
}

// kill sends SIGKILL to the process group and waits for the process.
func (p *proc) kill() error {
	if p.exited() {
		return nil
	}
	if err := p.signalGroup(syscall.SIGKILL); err != nil {
		return fmt.Errorf("sigkill: %w", err)
	}
	<-p.done
	return nil
}

// tailFile returns up to the last n bytes of path, trimmed to whole lines.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := max(fi.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(bytes.TrimSpace(b))
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// killLeftover kills a server left over from an earlier run on the same data
// directory. pidFile names the file the server records its pid in; match
// decides, from the live process's /proc entry, whether it is that server.
// Anything else (no file, dead pid, pid reused by another program) is ignored.
func killLeftover(pidFile string, match func(pid int) bool) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	pid := parsePID(string(b))
	if pid <= 1 || pid == os.Getpid() || !alive(pid) || !match(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill leftover pid %d from %s: %w", pid, pidFile, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("leftover pid %d from %s did not exit after SIGKILL", pid, pidFile)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// parsePID reads "1234\n" (Redis) or "PID: 1234\n..." (ClickHouse status).
func parsePID(s string) int {
	s = strings.TrimSpace(s)
	if line, _, _ := strings.Cut(s, "\n"); strings.HasPrefix(line, "PID:") {
		s = strings.TrimSpace(strings.TrimPrefix(line, "PID:"))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return pid
}

// alive reports whether pid names a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		// No procfs (non-Linux): fall back to signal 0.
		if os.IsNotExist(err) {
			if _, serr := os.Stat("/proc/self"); serr == nil {
				return false
			}
		}
		return syscall.Kill(pid, 0) == nil
	}
	// Format: pid (comm) state ...; comm may contain spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// procCmdline returns the argv of pid, or nil.
func procCmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// procCwd returns the working directory of pid, or "".
func procCwd(pid int) string {
	d, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
	if err != nil {
		return ""
	}
	return d
}

// absDir makes dir absolute and creates it.
func absDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("empty data directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	// Resolve symlinks so comparisons with /proc/PID/cwd match.
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	return abs, nil
}
