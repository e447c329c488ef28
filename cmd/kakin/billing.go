package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	adminbilling "github.com/kakin-dev/kakin/admin/billing"
	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/run"
	"github.com/kakin-dev/kakin/billingdb"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/redis/go-redis/v9"
)

// registerBilling mounts the receivable routes (admin role), registers
// the billing-run job kind on the process's job runner and runs the
// automatic billing runs (run.Auto) as a loop. The one call in
// serve.go is: s.registerBilling(conn, redisClient(), api, catalogReplica(conn))
func (s *server) registerBilling(conn driver.Conn, rdb *redis.Client, api *apiRoutes, replica *catalogstore.Replica) {
	store := billingdb.New(conn)
	svc := run.New(run.Options{Store: store, Records: usagedb.NewRecords(conn), Catalogues: replica,
		Periods: corrections.NewPeriods(conn), Redis: rdb, Log: s.log, Registerer: s.reg,
		MaxLines: detailLineLimit(tenants.NewStore(conn)), Members: groupMembers(replica)})
	js := jobs.NewStore(conn)
	runner := s.jobRunner(js, rdb)
	runner.Register(run.Kind, run.NewJob(svc))
	s.addLoop("billing-auto-runs", run.NewAuto(svc, run.AutoOptions{Jobs: js, Wake: runner.Wake, Tenants: replica.Tenants}).Loop)
	for _, rt := range adminbilling.New(store, svc, js, runner.Wake, api.pages, s.log).WithMembers(groupMembers(replica)).Routes() {
		if rt.Write {
			api.handleWrite(rt.Pattern(), rt.Scope, rt.Handler)
		} else {
			api.handle(rt.Pattern(), rt.Scope, ratelimit.Admin, rt.Handler)
		}
	}
}

const billingUsage = `Usage:
  kakin billing run    --tenant T --period YYYY-MM [--customer C | --group G]
  kakin billing close  --tenant T --period YYYY-MM
  kakin billing reopen --tenant T --period YYYY-MM --reason TEXT
  kakin billing number-format --tenant T --format 'INV-{yyyy}{mm}-{seq:6}'

run recomputes the period's draft receivables from the stored usage records
with the catalogue (the same as POST /v1/billing-runs, run here in the
foreground); close marks the period closed, recomputes its drafts once more,
finalises and numbers them (gapless per tenant); reopen reopens the tenant's
latest closed period only, with a reason. The ClickHouse and Redis flags
select the stores.
`

// runBilling runs the billing subcommands.
func runBilling(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, billingUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var cfg config
	fs := flag.NewFlagSet("kakin billing "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), billingUsage); fs.PrintDefaults() }
	cfg.register(fs)
	tenantID := fs.String("tenant", "", "tenant id")
	period := fs.String("period", "", "billing period, YYYY-MM")
	customer := fs.String("customer", "", "run: only this customer")
	group := fs.String("group", "", "run: only this customer group's members")
	reason := fs.String("reason", "", "reopen: why (recorded)")
	format := fs.String("format", "", "number-format: the tenant's invoice number format")
	switch sub {
	case "run", "close", "reopen", "number-format":
	default:
		fmt.Fprint(os.Stderr, billingUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	pos, err := parseFlagsAndArgs(fs, args)
	if err != nil {
		return ignoreHelp(err)
	}
	if len(pos) != 0 || *tenantID == "" || (sub != "number-format" && *period == "") {
		fmt.Fprint(os.Stderr, billingUsage)
		return errors.New("--tenant is required, and --period to run, close or reopen")
	}
	conn, err := chdb.Open(ctx, chdb.Config{Addr: cfg.CHAddr, Database: cfg.CHDatabase, User: cfg.CHUser, Password: cfg.CHPassword})
	if err != nil {
		return err
	}
	defer conn.Close()
	store := billingdb.New(conn)
	if sub == "number-format" {
		if err := billing.CheckNumberFormat(*format); err != nil {
			return err
		}
		if err := store.SetNumberFormat(ctx, *tenantID, *format, cliActor(), time.Now()); err != nil {
			return err
		}
		fmt.Printf("tenant %s numbers receivables as %s\n", *tenantID, *format)
		return nil
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, DialTimeout: 3 * time.Second, ContextTimeoutEnabled: true})
	defer rdb.Close()
	quiet := slog.New(slog.DiscardHandler)
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Tenants: []string{*tenantID}, WithoutPII: true, Log: quiet})
	if err := replica.Load(ctx); err != nil {
		return err
	}
	svc := run.New(run.Options{Store: store, Records: usagedb.NewRecords(conn), Catalogues: replica,
		Periods: corrections.NewPeriods(conn), Redis: rdb, Log: quiet, MaxLines: detailLineLimit(tenants.NewStore(conn)),
		Members: groupMembers(replica)})
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	switch sub {
	case "run":
		res, err := svc.Run(ctx, run.Request{Tenant: *tenantID, RunID: "cli:" + clock.Now().UTC().Format(time.RFC3339),
			Period: *period, Customer: *customer, Group: *group, Actor: cliActor(), Watermark: clock.Now().UTC().Truncate(time.Second)})
		if err != nil {
			return err
		}
		return out.Encode(res)
	case "close":
		res, err := svc.Close(ctx, *tenantID, *period, cliActor())
		if err != nil {
			return err
		}
		return out.Encode(res)
	default:
		n, err := svc.Reopen(ctx, *tenantID, *period, *reason, cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("tenant %s period %s reopened (%d receivables back to draft, numbers kept)\n", *tenantID, *period, n)
		return nil
	}
}

// groupMembers resolves a customer group from the catalogue replica.
func groupMembers(replica *catalogstore.Replica) func(tenant, group string) ([]string, bool) {
	return func(tenant, group string) ([]string, bool) {
		e, ok := replica.Get(tenant, catalogstore.KindGroup, group)
		if !ok || e.Deleted {
			return nil, false
		}
		g, ok := e.Value.(*catalog.Group)
		if !ok {
			return nil, false
		}
		return g.Members, true
	}
}
