package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// sentinelRedis starts a main Redis behind Sentinel (a primary, two
// replicas, three Sentinels) for the test and returns it with the settings
// that point a process at it. --redis-addr is set to an address where
// nothing listens, so a client that ignored the Sentinel flags fails.
func sentinelRedis(t *testing.T) (*devstack.RedisSentinel, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := devstack.StartRedisSentinel(ctx, filepath.Join(t.TempDir(), "sentinel"), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Stop() })
	return rs, []string{"KAKIN_REDIS_ADDR=" + deadAddr(t),
		"KAKIN_REDIS_SENTINEL_ADDRS=" + strings.Join(rs.SentinelAddrs(), ","),
		"KAKIN_REDIS_SENTINEL_MASTER=" + devstack.SentinelMaster}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// failover SIGKILLs the current primary and waits until the Sentinels name
// another one; it returns the old and the new primary's addresses.
func failover(t *testing.T, rs *devstack.RedisSentinel) (string, string) {
	t.Helper()
	ctx := context.Background()
	old, err := rs.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Node(old).Kill(); err != nil {
		t.Fatal(err)
	}
	var now string
	waitFor(t, 60*time.Second, "the Sentinels to promote a replica", func() (bool, string) {
		now, err = rs.Primary(ctx)
		if err != nil {
			return false, err.Error()
		}
		return now != old, "primary " + now
	})
	return old, now
}

// TestOneOffCommandsFollowSentinel: a one-off command (kakin catalog apply,
// which takes the tenant's catalogue write lock in the main Redis) reaches
// the main Redis through --redis-sentinel-addrs, before and after a
// failover; with only the dead --redis-addr it fails, so it does use Redis.
func TestOneOffCommandsFollowSentinel(t *testing.T) {
	e := newEnv(t, e2ePrices)
	rs, sentinelEnv := sentinelRedis(t)
	file := filepath.Join(e.dir, "catalogue.yaml")
	if err := os.WriteFile(file, []byte(tieredCatalogue), 0o600); err != nil {
		t.Fatal(err)
	}
	apply := func(env []string, path string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, shared.bin, "catalog", "apply", "--tenant", "sentinel", "-f", path, "--yes")
		cmd.Env = append(e.environ(), env...) // the last setting of a variable wins
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := apply([]string{"KAKIN_REDIS_ADDR=" + deadAddr(t)}, file); err == nil {
		t.Fatalf("apply with an unreachable --redis-addr and no Sentinel succeeded:\n%s", out)
	}
	if out, err := apply(sentinelEnv, file); err != nil || !strings.Contains(out, "applied: 5 revisions written") {
		t.Fatalf("apply through Sentinel: %v\n%s", err, out)
	}
	old, now := failover(t, rs)
	changed := filepath.Join(e.dir, "changed.yaml")
	if err := os.WriteFile(changed, []byte(strings.Replace(tieredCatalogue, "name: API,", "name: API v2,", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := apply(sentinelEnv, changed); err != nil || !strings.Contains(out, "1 to update") || !strings.Contains(out, "applied: 1 revisions written") {
		t.Fatalf("apply after the failover (%s → %s): %v\n%s", old, now, err, out)
	}
}

// tieredRun is a pipeline whose processes all use a main Redis behind
// Sentinel, with the tiered catalogue (graduated prices: every line depends
// on the customer's running total in the main Redis) for 12 customers, and
// 6,000 events of theirs with the lines and amount the engine's batch
// recomputation gives them.
type tieredRun struct {
	e         *env
	rs        *devstack.RedisSentinel
	front     *proc // ingest, dedupe, admin
	rater     *proc
	bodies    [][]byte // 60 NDJSON bodies of 100 events
	wantLines uint64
	want      decimal.Decimal
}

// startTieredUnderSentinel starts Sentinel and the processes (front, then
// rater and aggregator in their groups), creates the customers and applies
// the catalogue with the CLI (through Sentinel too).
func startTieredUnderSentinel(t *testing.T) *tieredRun {
	t.Helper()
	e := newEnv(t, e2ePrices)
	rs, sentinelEnv := sentinelRedis(t)
	e.extraEnv = append(sentinelEnv, "KAKIN_BATCH_SIZE=100") // many small batches: a fault lands mid-stream
	v := apitest.NewValidator(t)
	run := &tieredRun{e: e, rs: rs, front: e.start("front", "ingest,dedupe,admin")}
	c := tenantAPI{&api{t: t, base: run.front.url, http: v.Client()}, "tiered"}

	const customers = 12
	file := tieredCatalogue + "basic_contracts:\n"
	for i := range customers {
		id := fmt.Sprintf("c%02d", i)
		if r := c.call("POST", "/v1/customers", fmt.Sprintf(`{"id":%q}`, id)); r.status != 201 {
			t.Fatalf("create customer: %d %s", r.status, r.body)
		}
		file += fmt.Sprintf("  - {id: b-%s, customer: %s, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}\n", id, id)
	}
	file += "service_contracts:\n"
	for i := range customers {
		id := fmt.Sprintf("c%02d", i)
		file += fmt.Sprintf("  - {id: s-%s, customer: %s, basic_contract: b-%s, service: api, start_date: 2026-01-01, plans: [{plan: std, start_date: 2026-01-01}]}\n", id, id, id)
	}
	path := filepath.Join(e.dir, "tiered.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	e.output(t, "catalog", "apply", "--tenant", "tiered", "-f", path, "--yes")

	cat, err := catalog.Decode(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pricing.Compile(cat)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(18, 3))
	var events []schemas.UsageEvent
	var body strings.Builder
	for i := range 6000 {
		ev := schemas.UsageEvent{Tenant: "tiered", ID: fmt.Sprintf("s-%05d", i), Customer: fmt.Sprintf("c%02d", rng.IntN(customers)),
			Element: "calls", Quantity: decimal.New(rng.Int64N(3000), -1),
			Time: time.Date(2026, 11, 1+rng.IntN(20), rng.IntN(24), 0, 0, 0, time.UTC)}
		events = append(events, ev)
		fmt.Fprintf(&body, `{"id":%q,"customer":%q,"element":"calls","quantity":"%s","time":%q}`+"\n",
			ev.ID, ev.Customer, ev.Quantity, ev.Time.Format(time.RFC3339))
		if (i+1)%100 == 0 {
			run.bodies = append(run.bodies, []byte(body.String()))
			body.Reset()
		}
	}
	batch := eng.RatePeriod(events)
	if len(batch.Unrated) != 0 {
		t.Fatalf("the workload has unratable events: %+v", batch.Unrated[0].Reason)
	}
	run.want = decimal.Zero
	for _, l := range batch.Lines {
		run.want = run.want.Add(l.Line.Decimal())
	}
	run.wantLines = uint64(len(batch.Lines))
	run.rater = e.startMember("rater", "rater", "kakin-rater")
	e.startMember("aggregator", "aggregator", "kakin-aggregator")
	return run
}

// storing waits until the pipeline has stored lines.
func (r *tieredRun) storing(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	waitFor(t, time.Minute, "lines being stored", func() (bool, string) {
		got, err := r.e.rated(context.Background(), "tiered")
		n = got.Lines
		return err == nil && n > 0, fmt.Sprintf("%d lines (%v)", n, err)
	})
	return n
}

// promoted waits until the Sentinels name a primary other than old.
func (r *tieredRun) promoted(t *testing.T, old string) string {
	t.Helper()
	var now string
	waitFor(t, time.Minute, "the Sentinels to promote a replica", func() (bool, string) {
		var err error
		now, err = r.rs.Primary(context.Background())
		return err == nil && now != old, fmt.Sprintf("primary %s (%v)", now, err)
	})
	return now
}

// exact waits until ClickHouse holds exactly the recomputation's lines and
// amount, with nothing unrated and nothing flagged duplicate.
func (r *tieredRun) exact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 3*time.Minute, "exact tiered totals", func() (bool, string) {
		got, err := r.e.rated(ctx, "tiered")
		if err != nil {
			return false, err.Error()
		}
		if got.Lines > r.wantLines {
			t.Fatalf("%d lines, more than the %d events", got.Lines, r.wantLines)
		}
		return got.Lines == r.wantLines && got.Amount.Equal(r.want),
			fmt.Sprintf("lines %d/%d amount %s/%s; %s", got.Lines, r.wantLines, got.Amount, r.want, r.e.lags(ctx))
	})
	if u := r.e.count(ctx, "SELECT count() FROM usage_unrated FINAL WHERE tenant = 'tiered'"); u != 0 {
		t.Errorf("%d records unrated, want 0", u)
	}
	if d := r.e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = 'tiered'"); d != 0 {
		t.Errorf("%d records flagged duplicate, want 0 (none was sent twice)", d)
	}
}

// TestPipelineSurvivesSentinelFailover streams usage of a tiered tenant
// through the pipeline roles, all with the main Redis behind Sentinel, and
// SIGKILLs the primary while the stream is under way (two thirds of the
// usage are sent after the kill, during the failover). ClickHouse must end
// with exactly the lines and amount of the batch recomputation of every
// event: no tier step lost or taken twice, no record lost or charged twice.
func TestPipelineSurvivesSentinelFailover(t *testing.T) {
	r := startTieredUnderSentinel(t)
	old, err := r.rs.Primary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var atKill uint64
	sendAll(t, r.front.url, "tiered", workload{bodies: r.bodies}, func(i int) {
		if i != len(r.bodies)/3 {
			return
		}
		atKill = r.storing(t)
		if err := r.rs.Node(old).Kill(); err != nil {
			t.Fatal(err)
		}
	})
	now := r.promoted(t, old)
	t.Logf("primary %s SIGKILLed with %d of %d lines stored; %s promoted", old, atKill, r.wantLines, now)
	r.exact(t)
}

// TestRaterStateSurvivesFailoverWithReplicasBehind: the replicas stop
// (SIGSTOP) while the rater works, so its running-state saves reach the
// primary only and their WAIT fails; then the replicas and the primary are
// SIGKILLed, the replicas start again without those saves and one is
// promoted. A batch whose save no replica
// acknowledged must not be committed (its retry finds the records applied
// on the primary, but must still wait for a replica): otherwise the
// promoted replica lacks that state, later records are priced from the
// running totals before it, and the amounts come out wrong.
func TestRaterStateSurvivesFailoverWithReplicasBehind(t *testing.T) {
	r := startTieredUnderSentinel(t)
	ctx := context.Background()
	old, err := r.rs.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var replicas []*devstack.Redis
	for _, n := range r.rs.Nodes {
		if n.Addr != old {
			replicas = append(replicas, n)
		}
	}
	third := len(r.bodies) / 3
	sendAll(t, r.front.url, "tiered", workload{bodies: r.bodies[:third]}, func(int) {})
	r.storing(t)
	for _, n := range replicas {
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	// Usage sent after the pause: the rater has work whose saves no replica
	// can acknowledge (the first third may be rated before the pause).
	held := third + 2
	sendAll(t, r.front.url, "tiered", workload{bodies: r.bodies[third:held]}, func(int) {})
	// Two failed batch attempts: with a save acknowledged by no replica, a
	// batch is not done.
	waitFor(t, time.Minute, "the rater to fail two batch attempts", func() (bool, string) {
		n := handleErrors(t, r.rater)
		return n >= 2, fmt.Sprintf("%v failed attempts", n)
	})
	// The replicas die with what they had not read (a stopped process
	// still receives into its socket buffer: resuming it would apply the
	// stream), then the primary; they start again from their own AOF and
	// the Sentinels promote one of them.
	for _, n := range replicas {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.rs.Node(old).Kill(); err != nil {
		t.Fatal(err)
	}
	for _, n := range replicas {
		if err := n.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	now := r.promoted(t, old)
	got, _ := r.e.rated(ctx, "tiered")
	t.Logf("replicas paused, primary %s SIGKILLed with %d of %d lines stored; %s promoted", old, got.Lines, r.wantLines, now)
	sendAll(t, r.front.url, "tiered", workload{bodies: r.bodies[held:]}, func(int) {})
	r.exact(t)
}

// handleErrors is the rater's count of failed batch attempts
// (kakin_stage_errors_total{stage="rater",kind="handle"}) on its /metrics.
func handleErrors(t *testing.T, p *proc) float64 {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "kakin_stage_errors_total{") && strings.Contains(line, `kind="handle"`) && strings.Contains(line, `stage="rater"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				return v
			}
		}
	}
	return 0
}
