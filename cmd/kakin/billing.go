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

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/billing/run"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/clock"
)

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
	var cfg app.Config
	fs := flag.NewFlagSet("kakin billing "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), billingUsage); fs.PrintDefaults() }
	cfg.RegisterFlags(fs)
	tenantID := fs.String("tenant", "", "tenant id")
	period := fs.String("period", "", "billing period, YYYY-MM")
	customer := fs.String("customer", "", "run: only this customer")
	group := fs.String("group", "", "run: only this customer group's members")
	reason := fs.String("reason", "", "reopen: why (recorded)")
	format := fs.String("format", "", "number-format: the tenant's invoice number format")
	noWait := fs.Bool("no-pipeline-wait", false, "run, close: compute from what is stored without waiting for the pipeline's stages "+
		"to commit what Kafka holds (only when nothing is in flight, e.g. the pipeline is stopped)")
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
	conn, err := chdb.Open(ctx, cfg.ClickHouse.Chdb())
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
	rdb, err := cfg.Redis.Client()
	if err != nil {
		return err
	}
	defer rdb.Close()
	quiet := slog.New(slog.DiscardHandler)
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Tenants: []string{*tenantID}, WithoutPII: true, Log: quiet})
	if err := replica.Load(ctx); err != nil {
		return err
	}
	wm := app.BillingWatermark(cfg)
	if *noWait {
		wm = nil
		fmt.Fprintln(os.Stderr, "kakin billing: not waiting for the pipeline (--no-pipeline-wait): records still in Kafka are not in this "+sub)
	}
	svc := app.NewBillingService(conn, rdb, replica, quiet, nil, wm)
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	switch sub {
	case "run":
		watermark := clock.Now().UTC().Truncate(time.Second)
		if _, err := svc.WaitForPipeline(ctx); err != nil {
			return err
		}
		res, err := svc.Run(ctx, run.Request{Tenant: *tenantID, RunID: "cli:" + clock.Now().UTC().Format(time.RFC3339),
			Period: *period, Customer: *customer, Group: *group, Actor: cliActor(), Watermark: watermark})
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
