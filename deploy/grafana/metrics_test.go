package grafana

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// clusterOnly are the metrics a process exports only on a ClickHouse
// cluster (--clickhouse-cluster): kakin dev runs one server, so they are not
// looked for here. Their names are the exporter's own constants, and
// aggregator.TestClusterReplicaDelays (make test-cluster) checks that they
// are exported on a real cluster.
var clusterOnly = []string{chdb.ReplicaDelayMetric, chdb.ReplicaUpMetric}

// TestEveryNamedMetricExists starts Kakin (kakin dev: every role in one
// process, with its own Redis, ClickHouse and embedded broker, real access
// tokens), sends it the traffic that makes each series appear — usage
// accepted, rejected, duplicate, unrated and unreadable, a file import (a job), a
// correction, a catalogue write, refused and rate-limited token requests, a request without a
// token — and checks that every metric a dashboard or an alert rule names is
// on its /metrics (but those of clusterOnly). A renamed or removed metric fails here, not on a
// dashboard in production. Then a real Prometheus scrapes it and evaluates
// the rules and the dashboards' queries (checkWithPrometheus).
func TestEveryNamedMetricExists(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis, ClickHouse and kakin: skipped in -short mode")
	}
	want := namedMetrics(append(dashboardExprs(t), ruleExprs(t)...))
	for _, m := range clusterOnly {
		if _, ok := want[m]; !ok {
			t.Errorf("%s is listed as cluster-only but no dashboard or rule reads it", m)
		}
		delete(want, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := devstack.EnsureInstalled(ctx, nil); err != nil {
		t.Fatal(err)
	}
	k := startKakin(ctx, t)
	k.traffic(ctx, t)

	var missing []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		have := k.scrape(ctx, t)
		missing = missing[:0]
		for name := range want {
			if !have[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s (read by %s) is not on a running Kakin's /metrics", m, want[m])
	}
	t.Logf("%d metric names read by the dashboards and alert rules, all on /metrics: %v", len(want), len(missing) == 0)

	t.Run("prometheus", func(t *testing.T) { checkWithPrometheus(ctx, t, k) })
}

type kakin struct {
	base  string // http://127.0.0.1:port
	kafka string // the embedded broker
	dir   string
	log   string
}

// startKakin builds the binary and runs `kakin dev` on free ports until the
// test ends.
func startKakin(ctx context.Context, t *testing.T) *kakin {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kakin")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/kakin").CombinedOutput(); err != nil {
		t.Fatalf("build kakin: %v\n%s", err, out)
	}
	port := func() string {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	httpAddr, kafkaAddr := port(), port()
	chHTTP, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	k := &kakin{base: "http://" + httpAddr, kafka: kafkaAddr, dir: filepath.Join(dir, "data"), log: filepath.Join(dir, "kakin.log")}
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "dev", "--data-dir="+k.dir, "--http-addr="+httpAddr, "--redis-addr="+port(),
		"--clickhouse-addr="+port(), "--clickhouse-http-port="+strconv.Itoa(chHTTP), "--kafka-brokers="+kafkaAddr)
	cmd.Env = append(os.Environ(),
		"KAKIN_RATE_TOKEN_PER_ADDRESS=3", // a few refused token requests reach the limit
		"KAKIN_FLUSH_INTERVAL=50ms",
		"KAKIN_PARTITIONS=2",
		"KAKIN_LOG_LEVEL=warn",
	)
	cmd.Dir = "../.." // the repository root: kakin dev loads deploy/demo/
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT) // kakin dev stops its roles, then ClickHouse and Redis
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(k.log)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("kakin dev log (tail):\n%s", b)
		}
	})
	deadline := time.Now().Add(4 * time.Minute)
	for {
		select {
		case <-done:
			t.Fatal("kakin dev exited before it was ready")
		default:
		}
		if code, _ := k.do(ctx, t, http.MethodGet, "/readyz", "", nil, ""); code == http.StatusOK {
			if _, err := os.Stat(filepath.Join(k.dir, "demo-client.json")); err == nil {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("kakin dev not ready after 4 minutes")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// do sends one request and returns the status and body.
func (k *kakin) do(ctx context.Context, t *testing.T, method, path, contentType string, body io.Reader, token string, basic ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (k *kakin) must(ctx context.Context, t *testing.T, want int, method, path, contentType, body, token string) []byte {
	t.Helper()
	code, b := k.do(ctx, t, method, path, contentType, strings.NewReader(body), token)
	if code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

// traffic sends what makes every series of the dashboards appear.
func (k *kakin) traffic(ctx context.Context, t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "demo-client.json"))
	if err != nil {
		t.Fatal(err)
	}
	var client struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(b, &client); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	const formType = "application/x-www-form-urlencoded"
	code, b := k.do(ctx, t, http.MethodPost, "/oauth/token", formType, strings.NewReader(form), "", client.ID, client.Secret)
	if code != http.StatusOK {
		t.Fatalf("token: %d %s", code, b)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token answer %s: %v", b, err)
	}
	token := tok.AccessToken

	// A wrong secret (invalid_client), then the per-address budget (3 a
	// minute) refuses before hashing (429).
	limited := false
	for i := 0; i < 8 && !limited; i++ {
		code, _ := k.do(ctx, t, http.MethodPost, "/oauth/token", formType, strings.NewReader(form), "", client.ID, "wrong")
		limited = code == http.StatusTooManyRequests
	}
	if !limited {
		t.Error("the token endpoint never answered 429")
	}
	// No token at all.
	k.must(ctx, t, http.StatusUnauthorized, http.MethodPost, "/v1/usage", "application/x-ndjson", `{}`, "")

	now := time.Now().UTC().Format(time.RFC3339)
	ev := func(id, customer, element, qty string) string {
		return fmt.Sprintf(`{"id":%q,"customer":%q,"element":%q,"quantity":%s,"time":%q}`, id, customer, element, qty, now)
	}
	const ndjson = "application/x-ndjson"
	k.must(ctx, t, http.StatusAccepted, http.MethodPost, "/v1/usage", ndjson, strings.Join([]string{
		ev("m-1", "cust-001", "api_calls", "10"),
		ev("m-2", "cust-002", "transfer_gb", `"2.5"`),
		ev("m-3", "cust-001", "no_such_element", "1"), // unrated: no price
		ev("m-4", "cust-001", "api_calls", "-1"),      // rejected: negative quantity
	}, "\n"), token)
	k.must(ctx, t, http.StatusAccepted, http.MethodPost, "/v1/usage", ndjson, ev("m-1", "cust-001", "api_calls", "10"), token) // a duplicate
	// A file import: a job.
	k.must(ctx, t, http.StatusAccepted, http.MethodPost, "/v1/usage/imports", ndjson,
		ev("i-1", "cust-003", "api_calls", "5")+"\n"+ev("i-2", "cust-003", "api_calls", "-5")+"\n", token)
	// A record no stage can read, written straight to usage.raw: dedupe
	// parks it as malformed_record.
	w := &kafka.Writer{Addr: kafka.TCP(k.kafka), Topic: schemas.TopicRaw, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("demo/cust-001"), Value: []byte("not json")}); err != nil {
		t.Fatalf("write a malformed record: %v", err)
	}
	w.Close()
	// A catalogue write.
	k.must(ctx, t, http.StatusCreated, http.MethodPost, "/v1/customers", "application/json", `{"id":"cust-metrics"}`, token)
	// A correction of a stored record (once the aggregator stored it).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, b := k.do(ctx, t, http.MethodPost, "/v1/usage/m-2/invalidate", "application/json", strings.NewReader(`{"reason":"metrics test"}`), token)
		if code/100 == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invalidate m-2: %d %s", code, b)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// scrape returns the sample names on /metrics.
func (k *kakin) scrape(ctx context.Context, t *testing.T) map[string]bool {
	t.Helper()
	code, b := k.do(ctx, t, http.MethodGet, "/metrics", "", nil, "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, b)
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			have[line[:i]] = true
		}
	}
	return have
}
