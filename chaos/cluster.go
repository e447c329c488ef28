package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// partitions per topic.
const partitions = 6

// Groups are the pipeline's consumer groups and the topics each reads.
var Groups = []struct {
	Role, Group string
	Topics      []string
}{
	{"dedupe", "kakin-dedupe", []string{schemas.TopicRaw}},
	{"rater", "kakin-rater", []string{schemas.TopicAccepted}},
	{"aggregator", "kakin-aggregator", aggregator.Topics},
}

// Cluster is the pipeline under test: Redis and ClickHouse (devstack
// servers, restarted in place), the broker and every role as supervised
// kakin processes.
type Cluster struct {
	bin      string
	dir      string
	log      *slog.Logger
	offset   string // KAKIN_CLOCK_OFFSET that puts a process on the world clock
	Redis    *devstack.Redis
	CH       *devstack.ClickHouse
	Broker   *Slot
	Roles    []*Slot // every kakin serve process, by role and index
	Database string

	cancel context.CancelFunc // ends supervision
	wg     sync.WaitGroup     // supervisors
}

// Slot is one supervised process: started again whenever it exits, like a
// supervisor (systemd, Kubernetes) would, on the same port and data.
type Slot struct {
	Name string
	Role string // "broker" or a kakin serve role
	Addr string // 127.0.0.1:port (HTTP for roles, Kafka for the broker)
	args []string
	c    *Cluster

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	planned   bool           // the running process was signalled by the nemesis
	downtime  time.Duration  // after a planned exit, restart after this long
	holdUntil time.Time      // do not restart before this
	starts    int            // processes started
	unplanned int            // exits nobody asked for
	lastExit  string         // how the last unplanned exit ended, with its log tail
	causes    map[string]int // unplanned exits by cause (see exitCause)
}

// NewCluster starts Redis, ClickHouse and the broker under dir, migrates, and
// starts roles[role] processes of every role, each supervised until ctx
// ends. bin is the kakin binary.
func NewCluster(ctx context.Context, bin, dir string, roles map[string]int, log *slog.Logger) (c *Cluster, err error) {
	c = &Cluster{bin: bin, dir: dir, log: log, Database: "chaos"}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if c.offset, err = worldOffset(); err != nil {
		return nil, err
	}
	if c.Redis, err = devstack.StartRedis(ctx, filepath.Join(dir, "redis"), 0); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if c.CH, err = devstack.StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), 0, 0); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pricelist.json"), []byte(PriceList), 0o644); err != nil {
		return nil, fmt.Errorf("chaos: price list: %w", err)
	}
	if _, err := auth.GenerateKeyFile(filepath.Join(dir, "token-keys")); err != nil {
		return nil, fmt.Errorf("chaos: token keys: %w", err)
	}
	if _, err := vault.GenerateMasterKeyFile(filepath.Join(dir, "master-key")); err != nil {
		return nil, fmt.Errorf("chaos: master key: %w", err)
	}
	port, err := devstack.FreePort()
	if err != nil {
		return nil, fmt.Errorf("chaos: broker port: %w", err)
	}
	brokerAddr := "127.0.0.1:" + strconv.Itoa(port)
	c.Broker = &Slot{Name: "broker", Role: "broker", Addr: brokerAddr, c: c, causes: map[string]int{},
		args: []string{"broker", "--addr=" + brokerAddr, "--data-dir=" + filepath.Join(dir, "kafka")}}
	c.superviseSlot(sctx, c.Broker)
	if err := c.waitBroker(ctx, time.Minute); err != nil {
		return nil, err
	}
	if out, err := c.Run(ctx, "migrate"); err != nil {
		return nil, fmt.Errorf("chaos: kakin migrate: %w\n%s", err, out)
	}
	// The admin role first: the tiered tenant's customers and catalogue are
	// set up through it before any rater starts, so that every rater's
	// first catalogue load already holds them.
	for _, role := range []string{"admin", "ingest", "dedupe", "rater", "aggregator"} {
		if role == "ingest" {
			if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
				return nil, err
			}
			if err := c.setUpTenants(ctx); err != nil {
				return nil, fmt.Errorf("chaos: set up tenants: %w", err)
			}
		}
		for i := range roles[role] {
			port, err := devstack.FreePort()
			if err != nil {
				return nil, fmt.Errorf("chaos: %s port: %w", role, err)
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			s := &Slot{Name: fmt.Sprintf("%s-%d", role, i+1), Role: role, Addr: addr, c: c, causes: map[string]int{},
				args: []string{"serve", "--roles=" + role, "--http-addr=" + addr}}
			c.Roles = append(c.Roles, s)
			c.superviseSlot(sctx, s)
		}
	}
	return c, nil
}

func (c *Cluster) superviseSlot(ctx context.Context, s *Slot) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s.supervise(ctx)
	}()
}

// Close stops every process (SIGTERM, then SIGKILL after 15 s), then
// ClickHouse and Redis.
func (c *Cluster) Close() {
	c.cancel()
	c.wg.Wait()
	if c.CH != nil {
		_ = c.CH.Stop()
	}
	if c.Redis != nil {
		_ = c.Redis.Stop()
	}
}

// setUpTenants creates the tiered tenant's customers through the admin API
// and applies its catalogue (masters and contracts) with kakin catalog apply.
func (c *Cluster) setUpTenants(ctx context.Context) error {
	admin := c.URLs("admin")
	if len(admin) == 0 {
		return errors.New("chaos: the tiered tenant needs an admin process")
	}
	for i := range tieredCustomers {
		body := fmt.Sprintf(`{"id":%q}`, customerName(TieredTenant, i))
		var last string
		for attempt := 0; ; attempt++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, admin[0]+"/v1/customers", strings.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Kakin-Tenant", TieredTenant)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusConflict {
					break
				}
				last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			} else {
				last = err.Error()
			}
			if attempt == 20 {
				return fmt.Errorf("chaos: create customer %s: %s", customerName(TieredTenant, i), last)
			}
			if err := sleep(ctx, 250*time.Millisecond); err != nil {
				return err
			}
		}
	}
	path := filepath.Join(c.dir, "tiered.yaml")
	if err := os.WriteFile(path, []byte(TieredCatalogue()), 0o644); err != nil {
		return fmt.Errorf("chaos: catalogue file: %w", err)
	}
	if out, err := c.Run(ctx, "catalog", "apply", "--tenant", TieredTenant, "-f", path, "--yes"); err != nil {
		return fmt.Errorf("chaos: %w\n%s", err, out)
	}
	return nil
}

// worldOffset is the KAKIN_CLOCK_OFFSET that puts a process started now on
// WorldStart (and, running on, on WorldStart plus the time since).
func worldOffset() (string, error) {
	d := time.Until(WorldStart)
	if _, err := clock.ParseOffset(d.String()); err != nil {
		return "", err
	}
	return d.String(), nil
}

// Environ is the configuration of every kakin process of the cluster.
func (c *Cluster) Environ() []string {
	return append(os.Environ(),
		clock.OffsetEnv+"="+c.offset,
		"KAKIN_KAFKA_BROKERS="+c.Broker.Addr,
		"KAKIN_REDIS_ADDR="+c.Redis.Addr,
		"KAKIN_CLICKHOUSE_ADDR="+c.CH.Addr,
		"KAKIN_CLICKHOUSE_DATABASE="+c.Database,
		"KAKIN_PRICE_LIST="+filepath.Join(c.dir, "pricelist.json"),
		"KAKIN_PARTITIONS="+strconv.Itoa(partitions),
		"KAKIN_SESSION_TIMEOUT=6s",
		"KAKIN_FLUSH_INTERVAL=50ms",
		"KAKIN_BATCH_SIZE=500",
		"KAKIN_LOG_LEVEL=info",
		"KAKIN_TOKEN_KEYS_FILE="+filepath.Join(c.dir, "token-keys"),
		"KAKIN_MASTER_KEY_FILE="+filepath.Join(c.dir, "master-key"),
		"KAKIN_IMPORT_DIR="+filepath.Join(c.dir, "imports"),
		"KAKIN_CATALOG_POLL_INTERVAL=200ms",
		"KAKIN_DEDUPE_WINDOW=2160h", // events reach back ~55 days from the world's now
		"KAKIN_DEV_INSECURE=true",
	)
}

// Run runs a kakin command to completion and returns its output.
func (c *Cluster) Run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kakin %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// waitBroker waits until the broker answers a metadata request.
func (c *Cluster) waitBroker(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := stream.Ping(pctx, []string{c.Broker.Addr})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("chaos: broker not answering after %s: %w", timeout, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// supervise runs the slot's process until ctx ends, starting it again after
// every exit: after the nemesis's downtime for an exit it caused, after 1 s
// for any other (counted as unplanned).
func (s *Slot) supervise(ctx context.Context) {
	defer func() { // the process is gone: Running reports false
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
	}()
	for ctx.Err() == nil {
		s.mu.Lock()
		if wait := time.Until(s.holdUntil); wait > 0 {
			s.mu.Unlock()
			if sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		logPath := filepath.Join(s.c.dir, "logs", s.Name+".log")
		_ = os.MkdirAll(filepath.Dir(logPath), 0o755)
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			s.mu.Unlock()
			s.c.log.Error("chaos: open log", "slot", s.Name, "err", err)
			return
		}
		fmt.Fprintf(logf, "--- %s chaos: start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(s.args, " "))
		cmd := exec.Command(s.c.bin, s.args...)
		cmd.Env = s.c.Environ()
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			s.mu.Unlock()
			logf.Close()
			s.c.log.Error("chaos: start", "slot", s.Name, "err", err)
			if sleep(ctx, time.Second) != nil {
				return
			}
			continue
		}
		done := make(chan struct{})
		s.cmd, s.done, s.planned = cmd, done, false
		s.starts++
		s.mu.Unlock()
		var werr error
		go func() { werr = cmd.Wait(); logf.Close(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			return
		}
		s.mu.Lock()
		if s.planned {
			s.holdUntil = time.Now().Add(s.downtime)
		} else {
			s.unplanned++
			s.lastExit = fmt.Sprintf("%v; log: %s", werr, lastLines(logPath, 3))
			s.causes[exitCause(logPath)]++
			s.holdUntil = time.Now().Add(time.Second)
			s.c.log.Warn("chaos: process exited on its own; restarting it", "slot", s.Name, "exit", werr)
		}
		s.mu.Unlock()
	}
}

// Signal sends sig to the slot's running process and holds its restart for
// downtime after it exited. It reports false when no process was running.
func (s *Slot) Signal(ctx context.Context, sig syscall.Signal, downtime time.Duration) (bool, error) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	if cmd == nil || done == nil || isClosed(done) {
		s.mu.Unlock()
		return false, nil
	}
	s.planned, s.downtime = true, downtime
	s.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, fmt.Errorf("signal %s: %w", s.Name, err)
	}
	wait := time.NewTimer(40 * time.Second)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
		_ = cmd.Process.Kill() // a graceful stop that hangs is a finding of its own
		<-done
		s.c.log.Error("chaos: process did not stop within 40s of the signal; killed", "slot", s.Name, "signal", sig)
	case <-ctx.Done():
		return true, ctx.Err()
	}
	return true, nil
}

// Running reports whether the slot's process is running.
func (s *Slot) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done != nil && !isClosed(s.done)
}

// Ready reports whether the slot's process runs and answers /readyz (roles)
// or a metadata request (broker).
func (s *Slot) Ready(ctx context.Context) bool {
	if !s.Running() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if s.Role == "broker" {
		return stream.Ping(ctx, []string{s.Addr}) == nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stats returns the slot's process starts, unplanned exits, the last one,
// and the exits by cause.
func (s *Slot) Stats() (starts, unplanned int, last string, causes map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	causes = map[string]int{}
	for k, v := range s.causes {
		causes[k] = v
	}
	return s.starts, s.unplanned, s.lastExit, causes
}

var (
	addrRE   = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)
	numberRE = regexp.MustCompile(`\d+`)
)

// exitCause is the error a kakin process exited with (its last
// "kakin serve: …" line), with addresses and numbers blanked so that exits
// for one reason count together.
func exitCause(logPath string) string {
	cause := "no error line (killed by a signal?)"
	b, err := os.ReadFile(logPath)
	if err != nil {
		return cause
	}
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "kakin serve: ") || strings.HasPrefix(l, "kakin broker: ") {
			cause = l
		}
	}
	cause = numberRE.ReplaceAllString(addrRE.ReplaceAllString(cause, "ADDR"), "N")
	return trim(cause, 160)
}

// Slots returns the slots of a role.
func (c *Cluster) Slots(role string) []*Slot {
	var out []*Slot
	for _, s := range c.Roles {
		if s.Role == role {
			out = append(out, s)
		}
	}
	return out
}

// URLs are the base URLs of the ingest processes.
func (c *Cluster) URLs(role string) []string {
	var out []string
	for _, s := range c.Slots(role) {
		out = append(out, "http://"+s.Addr)
	}
	return out
}

// Healthy reports whether Redis, ClickHouse and every process answer and
// every consumer group is stable with one member per process of its role;
// otherwise what is not.
func (c *Cluster) Healthy(ctx context.Context) (bool, string) {
	var bad []string
	if !c.Broker.Ready(ctx) {
		return false, "broker down"
	}
	for _, s := range c.Roles {
		if !s.Ready(ctx) {
			bad = append(bad, s.Name+" not ready")
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, ", ")
	}
	for _, g := range Groups {
		if len(c.Slots(g.Role)) == 0 {
			continue
		}
		members, stable, err := c.GroupMembers(ctx, g.Group)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", g.Group, err))
		} else if !stable || members != len(c.Slots(g.Role)) {
			bad = append(bad, fmt.Sprintf("%s stable=%v members=%d/%d", g.Group, stable, members, len(c.Slots(g.Role))))
		}
	}
	return len(bad) == 0, strings.Join(bad, ", ")
}

// GroupMembers returns how many members of group hold partitions and
// whether the group is stable.
func (c *Cluster) GroupMembers(ctx context.Context, group string) (int, bool, error) {
	client := &kafka.Client{Addr: kafka.TCP(c.Broker.Addr), Timeout: 3 * time.Second}
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return 0, false, fmt.Errorf("describe %s: %w", group, err)
	}
	n, stable := 0, false
	for _, g := range resp.Groups {
		if g.Error != nil {
			return 0, false, fmt.Errorf("describe %s: %w", group, g.Error)
		}
		stable = g.GroupState == "Stable"
		for _, m := range g.Members {
			if len(m.MemberAssignments.Topics) > 0 {
				n++
			}
		}
	}
	return n, stable, nil
}

// Lags returns every consumer group's lag (end − committed offsets).
func (c *Cluster) Lags(ctx context.Context) (map[string]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(c.Broker.Addr), Timeout: 5 * time.Second}
	out := map[string]int64{}
	for _, g := range Groups {
		lag, err := stream.GroupLag(ctx, client, g.Group, g.Topics)
		if err != nil {
			return out, fmt.Errorf("lag of %s: %w", g.Group, err)
		}
		out[g.Group] = lag
	}
	return out, nil
}

// WaitHealthy polls Healthy until it holds or timeout passes.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := c.Healthy(ctx)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not healthy after %s: %s", timeout, why)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lastLines returns the last n non-empty lines of a file, joined by " | ".
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	var lines []string
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, string(l))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
