// Package e2e runs the kakin binary as real processes against a real Redis, a
// real ClickHouse and an embedded Kafka-protocol broker, and checks the whole
// data path: ingest → Kafka → dedupe → rater → aggregator → ClickHouse.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// shared is the infrastructure all tests of this package use: one Redis and
// one ClickHouse (testenv; each test gets its own database) and the kakin
// binary.
var shared struct {
	redis  string // address
	chAddr string
	bin    string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	testenv.Main(m, testenv.Want{Redis: true, ClickHouse: true}, func(context.Context) error {
		shared.redis, shared.chAddr = testenv.RedisAddr(), testenv.ClickHouseAddr()
		shared.bin = filepath.Join(testenv.Dir(), "kakin")
		build := exec.Command("go", "build", "-o", shared.bin, "../cmd/kakin")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build kakin: %w", err)
		}
		return nil
	})
}

// env is one test's pipeline: its own Kafka broker and ClickHouse database,
// the shared Redis, a price list, and the kakin processes it started.
type env struct {
	t        *testing.T
	dir      string
	kafka    *devstack.Kafka
	database string
	prices   string
	ch       driver.Conn
	pl       *pricelist.List
	extraEnv []string    // appended to every process's environment
	kconn    stream.Conn // the test's own clients of the broker (TLS and SASL as the processes')
	secure   bool        // real access tokens; otherwise --dev-insecure (the Kakin-Tenant header)
	mu       sync.Mutex
	procs    []*proc
}

func newEnv(t *testing.T, priceList string) *env {
	t.Helper()
	return newEnvWith(t, priceList, brokerSetup{})
}

// brokerSetup is how a test's broker is secured: the broker's options
// (devstack.StartKafkaWith; its port and data directory are newEnvWith's),
// the test's own Conn to it, and the processes' settings (KAKIN_KAFKA_TLS_CA,
// KAKIN_KAFKA_SASL_*), which every process gets, migrate included. The zero
// value is a plaintext broker without SASL.
type brokerSetup struct {
	opts    devstack.KafkaOptions
	conn    func(addrs []string) stream.Conn
	environ []string
}

func newEnvWith(t *testing.T, priceList string, bs brokerSetup) *env {
	t.Helper()
	dir := t.TempDir()
	k, err := devstack.StartKafkaWith(bs.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	e := &env{t: t, dir: dir, kafka: k, database: testenv.NewDatabase(t, "e2e"),
		prices: filepath.Join(dir, "pricelist.json"), extraEnv: bs.environ, kconn: stream.Plain(k.Addrs)}
	if bs.conn != nil {
		e.kconn = bs.conn(k.Addrs)
	}
	if err := os.WriteFile(e.prices, []byte(priceList), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.GenerateKeyFile(filepath.Join(dir, "token-keys")); err != nil { // one key ring for all processes
		t.Fatal(err)
	}
	if _, err := vault.GenerateMasterKeyFile(filepath.Join(dir, "master-key")); err != nil { // customers' personal fields
		t.Fatal(err)
	}
	if e.pl, err = pricelist.Load(e.prices); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e.run(t, "migrate") // the database is new: the binary's migrate creates it
	if e.ch, err = chdb.Open(ctx, chdb.Config{Addr: shared.chAddr, Database: e.database, User: "default"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, p := range e.procs {
			p.kill()
			if t.Failed() {
				t.Logf("--- log of %s (%s):\n%s", p.name, p.roles, tail(p.log.Name()))
			}
		}
		e.ch.Close()
	})
	return e
}

// The e2e world has a clock of its own, injected into every process the
// tests start (KAKIN_CLOCK_OFFSET): it read worldStart when the tests began
// and runs on from there. The fixtures' usage is dated in October and
// November 2026 and their expected charges name those periods, so the world
// is set shortly after them, whatever day the suite runs on. Code in these
// tests that needs "now" asks worldNow, never the machine's clock.
var (
	worldStart = time.Date(2026, time.November, 25, 12, 0, 0, 0, time.UTC)
	testsBegan = time.Now()
)

// worldNow is the processes' current time.
func worldNow() time.Time { return worldStart.Add(time.Since(testsBegan)) }

// worldOffset is the KAKIN_CLOCK_OFFSET that puts a process on worldNow.
func worldOffset() string { return worldStart.Sub(testsBegan).String() }

// environ is the configuration every kakin process of the test gets.
func (e *env) environ() []string {
	return append(append(os.Environ(),
		clock.OffsetEnv+"="+worldOffset(),
		"KAKIN_KAFKA_BROKERS="+strings.Join(e.kafka.Addrs, ","),
		"KAKIN_REDIS_ADDR="+shared.redis,
		"KAKIN_CLICKHOUSE_ADDR="+shared.chAddr,
		"KAKIN_CLICKHOUSE_DATABASE="+e.database,
		"KAKIN_PRICE_LIST="+e.prices,
		"KAKIN_PARTITIONS=6",
		"KAKIN_SESSION_TIMEOUT=6s",
		"KAKIN_FLUSH_INTERVAL=50ms",
		"KAKIN_BATCH_SIZE=500",
		"KAKIN_LOG_LEVEL="+logLevel(),
		"KAKIN_TOKEN_KEYS_FILE="+filepath.Join(e.dir, "token-keys"),
		"KAKIN_MASTER_KEY_FILE="+filepath.Join(e.dir, "master-key"),
		"KAKIN_CATALOG_POLL_INTERVAL=200ms",
		// The fixtures reach back to 1 October 2026, 55 days before
		// worldStart: a 90-day window keeps them acceptable.
		"KAKIN_DEDUPE_WINDOW=2160h",
		"KAKIN_DEV_INSECURE="+strconv.FormatBool(!e.secure),
	), e.extraEnv...)
}

// run runs a kakin command to completion.
func (e *env) run(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(shared.bin, args...)
	cmd.Env = e.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kakin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// proc is one running kakin serve process.
type proc struct {
	name  string
	roles string
	url   string
	cmd   *exec.Cmd
	log   *os.File
	done  chan struct{}
}

// start runs "kakin serve --roles=roles" and waits until it is ready (/readyz).
func (e *env) start(name, roles string) *proc {
	e.t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		e.t.Fatal(err)
	}
	logDir := e.dir
	if d := os.Getenv("E2E_LOG_DIR"); d != "" { // keep process logs after the test
		logDir = d
	}
	logf, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%s-%s-%d.log", e.database, name, time.Now().UnixNano())))
	if err != nil {
		e.t.Fatal(err)
	}
	p := &proc{name: name, roles: roles, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: logf, done: make(chan struct{})}
	p.cmd = exec.Command(shared.bin, "serve", "--roles="+roles, fmt.Sprintf("--http-addr=127.0.0.1:%d", port))
	p.cmd.Env = e.environ()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz") // ready: its dependencies (and, with auth, the revocation list) answer
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			e.t.Fatalf("%s exited at start: %s", name, tail(logf.Name()))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not become healthy: %s", name, tail(logf.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, no final commit.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Errorf("%s did not stop within 40s of SIGTERM", p.name)
		p.kill()
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 40000 {
		b = b[len(b)-40000:]
	}
	return string(b)
}

// ingestResponse mirrors ingest.Response.
type ingestResponse struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Results  []struct {
		Index  int    `json:"index"`
		ID     string `json:"id"`
		Status string `json:"status"`
		Errors []struct {
			Field  string `json:"field"`
			Reason string `json:"reason"`
		} `json:"errors"`
	} `json:"results"`
}

// post sends an NDJSON body to /v1/usage as tenant, retrying on 503.
func post(t *testing.T, baseURL, tenant string, body []byte) (int, ingestResponse) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, baseURL+"/v1/usage", bytes.NewReader(body))
		req.Header.Set("Kakin-Tenant", tenant)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post usage: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 10 {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		var out ingestResponse
		if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusUnprocessableEntity {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("decode ingest response: %v: %s", err, b)
			}
		}
		return resp.StatusCode, out
	}
}

// totals is the state of rated_usage for a tenant, read with FINAL.
type totals struct {
	Lines  uint64
	Amount decimal.Decimal
}

func (e *env) rated(ctx context.Context, tenant string) (totals, error) {
	var out totals
	row := e.ch.QueryRow(ctx, `SELECT count(), sum(amount) FROM rated_usage FINAL WHERE tenant = ?`, tenant)
	err := row.Scan(&out.Lines, &out.Amount)
	return out, err
}

func (e *env) count(ctx context.Context, query string, args ...any) uint64 {
	e.t.Helper()
	var n uint64
	if err := e.ch.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitFor polls cond until it returns true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
}

// logLevel is the kakin processes' log level: info, or E2E_LOG_LEVEL.
func logLevel() string {
	if l := os.Getenv("E2E_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}

// lags reports each consumer group's lag, for failure messages.
func (e *env) lags(ctx context.Context) string {
	client := e.kconn.Client(5 * time.Second)
	var out []string
	for _, g := range []struct {
		group  string
		topics []string
	}{
		{"kakin-dedupe", []string{schemas.TopicRaw}},
		{"kakin-rater", []string{schemas.TopicAccepted}},
		{"kakin-aggregator", aggregator.Topics},
	} {
		lag, err := stream.GroupLag(ctx, client, g.group, g.topics)
		if err != nil {
			out = append(out, fmt.Sprintf("%s lag: %v", g.group, err))
		} else {
			out = append(out, fmt.Sprintf("%s lag %d", g.group, lag))
		}
	}
	return strings.Join(out, ", ")
}

// groupMembers returns the ids of the group's members that hold partitions,
// and whether the group is stable.
func (e *env) groupMembers(ctx context.Context, group string) (map[string]bool, bool, error) {
	client := e.kconn.Client(5 * time.Second)
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, false, err
	}
	members := map[string]bool{}
	stable := false
	for _, g := range resp.Groups {
		if g.Error != nil {
			return nil, false, g.Error
		}
		stable = g.GroupState == "Stable"
		for _, m := range g.Members {
			if len(m.MemberAssignments.Topics) > 0 {
				members[m.MemberID] = true
			}
		}
	}
	return members, stable, nil
}

// startMember starts a process and waits until it has joined group and holds
// partitions. The embedded broker (kfake) never expires a member that dies
// after its join response was sent but before it synced, so the fault tests
// only kill members that have completed their join; a real Kafka broker
// expires such a member after the session timeout.
func (e *env) startMember(name, roles, group string) *proc {
	e.t.Helper()
	ctx := context.Background()
	before, _, err := e.groupMembers(ctx, group)
	if err != nil {
		e.t.Fatal(err)
	}
	p := e.start(name, roles)
	waitFor(e.t, 60*time.Second, name+" to join "+group, func() (bool, string) {
		now, stable, err := e.groupMembers(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		for m := range now {
			if !before[m] && stable {
				return true, ""
			}
		}
		return false, fmt.Sprintf("members %v stable %v", now, stable)
	})
	return p
}
