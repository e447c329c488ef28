package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/rater/pricelist"
)

// Options shape one run.
type Options struct {
	Bin       string         // the kakin binary
	Dir       string         // data and logs of every process
	Seed      uint64         // workload and fault schedule
	Roles     map[string]int // kakin serve processes per role
	PerKind   int            // faults of every kind
	MaxPause  time.Duration  // longest random pause before a fault
	BodyEvery time.Duration  // each client worker sends a body this often
	Workers   int            // client workers per tenant
	Drain     time.Duration  // bound from the end of traffic to exact totals and lag 0
	Log       *slog.Logger
}

// Report is the outcome of a run.
type Report struct {
	Seed          uint64
	Duration      time.Duration
	Bodies        int
	Records       int
	Retries       map[string]int
	Faults        map[string]int
	Skipped       map[string]int
	NotReady      int
	Overlaps      int
	Exits         map[string]int // unplanned exits by slot
	LastExits     map[string]string
	ExitCauses    map[string]int // unplanned exits by role and error
	Tenants       []*TenantResult
	Lags          map[string]int64
	DrainTime     time.Duration // end of traffic → exact and lag 0 (or the bound)
	Drained       bool
	CheckErr      string // the last error reading the state, if any
	ClientProblem []string
	Err           error
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	if r.Err != nil || !r.Drained || len(r.ClientProblem) > 0 {
		return false
	}
	for _, t := range r.Tenants {
		if !t.OK() {
			return false
		}
	}
	return true
}

// Run starts a cluster, sends traffic while the nemesis works through its
// plan, waits for the pipeline to drain and checks the result.
func Run(ctx context.Context, o Options) *Report {
	rep := &Report{Seed: o.Seed, Exits: map[string]int{}, LastExits: map[string]string{}, ExitCauses: map[string]int{}}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	log := o.Log
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	eng, err := compileTiered()
	if err != nil {
		rep.Err = err
		return rep
	}
	c, err := NewCluster(ctx, o.Bin, o.Dir, o.Roles, log)
	if err != nil {
		rep.Err = err
		return rep
	}
	defer c.Close()
	defer func() { // every unplanned exit, whatever the outcome
		for _, s := range append([]*Slot{c.Broker}, c.Roles...) {
			_, unplanned, last, causes := s.Stats()
			if unplanned > 0 {
				rep.Exits[s.Name] = unplanned
				rep.LastExits[s.Name] = last
			}
			for k, v := range causes {
				rep.ExitCauses[s.Role+": "+k] += v
			}
		}
	}()
	pl, err := pricelist.Load(filepath.Join(o.Dir, "pricelist.json"))
	if err != nil {
		rep.Err = err
		return rep
	}
	if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
		rep.Err = fmt.Errorf("cluster never became healthy: %w", err)
		return rep
	}
	log.Info("chaos: cluster up", "seed", o.Seed, "processes", len(c.Roles)+1, "dir", o.Dir)

	client := NewClient(c.URLs("ingest"), log)
	gens := map[string]*generator{FlatTenant: newGenerator(FlatTenant, o.Seed), TieredTenant: newGenerator(TieredTenant, o.Seed+1)}
	stopTraffic := make(chan struct{})
	var wg sync.WaitGroup
	var sendErr error
	var errMu sync.Mutex
	for ti, tenant := range []string{FlatTenant, TieredTenant} {
		for w := range o.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(o.Seed, uint64(ti*100+w)))
				tick := time.NewTicker(o.BodyEvery)
				defer tick.Stop()
				for {
					select {
					case <-stopTraffic:
						return
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					if err := client.Send(ctx, gens[tenant].next(), rng); err != nil {
						errMu.Lock()
						sendErr = err
						errMu.Unlock()
						return
					}
				}
			}()
		}
	}

	nem := NewNemesis(c, log)
	plan := Plan(o.Seed, o.PerKind, len(c.Roles), o.MaxPause)
	nemErr := nem.Run(ctx, plan)
	close(stopTraffic)
	wg.Wait()
	trafficEnd := time.Now()
	rep.Faults, rep.Skipped, rep.NotReady, rep.Overlaps = nem.Counts()
	if nemErr != nil { // report it, and still check what the pipeline holds
		rep.Err = fmt.Errorf("nemesis: %w", nemErr)
	}
	if sendErr != nil {
		rep.Err = fmt.Errorf("client: %w", sendErr)
		return rep
	}

	client.mu.Lock()
	rep.Bodies, rep.Records = client.bodies, client.records
	rep.Retries = client.retries
	rep.ClientProblem = append(append([]string{}, client.mismatches...), client.failed...)
	exps := map[string]Expected{}
	for _, tenant := range []string{FlatTenant, TieredTenant} {
		exps[tenant], err = expect(tenant, client.acked[tenant], client.resends[tenant], client.invalids[tenant], pl, eng)
		if err != nil {
			client.mu.Unlock()
			rep.Err = err
			return rep
		}
	}
	client.mu.Unlock()

	ch, err := chdb.Open(ctx, chdb.Config{Addr: c.CH.Addr, Database: c.Database, User: "default"})
	if err != nil {
		rep.Err = err
		return rep
	}
	defer ch.Close()
	// Wait until every group has drained and both tenants are exact, or
	// the bound passes; then report what is there.
	deadline := trafficEnd.Add(o.Drain)
	for {
		rep.Lags, err = c.Lags(ctx)
		drained := err == nil
		if err != nil {
			rep.CheckErr = err.Error()
		}
		for _, l := range rep.Lags {
			drained = drained && l == 0
		}
		last := time.Now().After(deadline) || ctx.Err() != nil
		if drained || last {
			// Check when drained; at the bound, report what is there.
			exact, err := rep.check(ctx, c, ch, exps)
			if err != nil {
				rep.CheckErr = err.Error()
			}
			if exact && drained {
				rep.Drained = true
				break
			}
		}
		if last {
			break
		}
		if err := sleep(ctx, time.Second); err != nil {
			break
		}
	}
	rep.DrainTime = time.Since(trafficEnd)
	return rep
}

// check reads usage.raw and ClickHouse and compares both tenants with what
// they should hold; it reports whether both are exact.
func (r *Report) check(ctx context.Context, c *Cluster, ch driver.Conn, exps map[string]Expected) (bool, error) {
	raw, err := readRaw(ctx, c.Broker.Addr, partitions)
	if err != nil {
		return false, err
	}
	var results []*TenantResult
	exact := true
	for _, tenant := range []string{FlatTenant, TieredTenant} {
		got, err := readStored(ctx, ch, tenant)
		if err != nil {
			return false, err
		}
		got.RawCopies = raw[tenant]
		res := compare(tenant, exps[tenant], got)
		results = append(results, res)
		exact = exact && res.OK()
	}
	r.Tenants = results
	return exact, nil
}

// String is the summary table.
func (r *Report) String() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "chaos %s  seed=%d  (rerun: KAKIN_CHAOS_SEED=%d)  %s\n", verdict, r.Seed, r.Seed, r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "client: %d bodies, %d records acknowledged; bodies sent again: %s\n", r.Bodies, r.Records, kv(r.Retries))
	b.WriteString("faults:\n")
	fmt.Fprintf(&b, "  %-16s %5s %8s\n", "kind", "done", "skipped")
	total := 0
	for _, k := range FaultKinds {
		fmt.Fprintf(&b, "  %-16s %5d %8d\n", k, r.Faults[k], r.Skipped[k])
		total += r.Faults[k]
	}
	fmt.Fprintf(&b, "  %-16s %5d\n", "total", total)
	fmt.Fprintf(&b, "  made while the cluster still recovered from the last: %d; cluster not healthy within 90s before a fault: %d times\n", r.Overlaps, r.NotReady)
	fmt.Fprintf(&b, "unplanned process exits (restarted by the supervisor): %s\n", kv(r.Exits))
	for _, k := range sortedKeys(r.ExitCauses) {
		fmt.Fprintf(&b, "  %4d × %s\n", r.ExitCauses[k], k)
	}
	fmt.Fprintf(&b, "%-13s %8s %8s %15s %15s %7s %9s %9s %9s %8s %6s\n", "tenant", "records", "lines", "expected", "got", "wrong", "dups exp", "dups got", "(resends", "+retry)", "unrated")
	for _, t := range r.Tenants {
		fmt.Fprintf(&b, "%-13s %8d %8s %15s %15s %7s %9d %9d %9d %8d %6s\n", t.Tenant, len(t.Exp.Records),
			fmt.Sprintf("%d/%d", t.Got.Lines, t.Exp.Lines), t.ExpAmount.String(), t.GotAmount.String(),
			fmt.Sprintf("%d/%d", len(t.WrongMonths), len(t.Exp.Totals)), t.ExpDuplicates, t.Got.Duplicates, t.Exp.Resends, t.RetryCopies,
			fmt.Sprintf("%d/%d", t.Got.Unrated, t.Exp.Unrated))
	}
	fmt.Fprintf(&b, "(wrong = customer-months whose total differs / customer-months; invalid records refused: ")
	for i, t := range r.Tenants {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", t.Tenant, t.Exp.Invalids)
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "consumer lag: %v; drained and exact: %v, %s after the end of traffic\n", r.Lags, r.Drained, r.DrainTime.Round(100*time.Millisecond))
	for _, t := range r.Tenants {
		for _, p := range t.Problems {
			fmt.Fprintf(&b, "PROBLEM %s: %s\n", t.Tenant, p)
		}
		for i, w := range t.WrongMonths {
			if i == 10 {
				fmt.Fprintf(&b, "  … %d more\n", len(t.WrongMonths)-10)
				break
			}
			fmt.Fprintf(&b, "  %s %s\n", t.Tenant, w)
		}
	}
	for i, p := range r.ClientProblem {
		if i == 10 {
			fmt.Fprintf(&b, "  … %d more client problems\n", len(r.ClientProblem)-10)
			break
		}
		fmt.Fprintf(&b, "PROBLEM client: %s\n", p)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "ERROR: %v\n", r.Err)
	}
	if !r.Drained && r.CheckErr != "" {
		fmt.Fprintf(&b, "last error reading the state: %s\n", r.CheckErr)
	}
	return b.String()
}

func kv[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
