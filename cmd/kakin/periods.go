package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/internal/chdb"
)

const periodsUsage = `Usage:
  kakin periods close  --tenant T --period YYYY-MM
  kakin periods reopen --tenant T --period YYYY-MM
  kakin periods list   --tenant T

A closed period's receivables are final: corrections of its usage are
billed as adjustments in the next open period, and re-rating it is refused
(409 period_closed). The ClickHouse flags (--clickhouse-addr …) select the store.
`

// runPeriods sets and lists a tenant's closed billing periods.
func runPeriods(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, periodsUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var cfg app.Config
	fs := flag.NewFlagSet("kakin periods "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), periodsUsage); fs.PrintDefaults() }
	cfg.RegisterFlags(fs)
	tenantID := fs.String("tenant", "", "tenant id")
	period := fs.String("period", "", "billing period, YYYY-MM")
	if sub != "close" && sub != "reopen" && sub != "list" {
		fmt.Fprint(os.Stderr, periodsUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	pos, err := parseFlagsAndArgs(fs, args)
	if err != nil {
		return ignoreHelp(err)
	}
	if len(pos) != 0 || *tenantID == "" || (sub != "list" && *period == "") {
		fmt.Fprint(os.Stderr, periodsUsage)
		return errors.New("--tenant is required, and --period to close or reopen")
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse.Chdb())
	if err != nil {
		return err
	}
	defer conn.Close()
	periods := corrections.NewPeriods(conn)
	switch sub {
	case "close", "reopen":
		if err := periods.Set(ctx, *tenantID, *period, sub == "close", cliActor()); err != nil {
			return err
		}
		done := "reopened"
		if sub == "close" {
			done = "closed"
		}
		fmt.Printf("tenant %s period %s %s\n", *tenantID, *period, done)
		return nil
	default:
		list, err := periods.List(ctx, *tenantID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PERIOD\tSTATE\tCHANGED\tBY")
		for _, p := range list {
			state := "open"
			if p.Closed {
				state = "closed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Period, state, p.ChangedAt.Format("2006-01-02 15:04:05Z"), p.ChangedBy)
		}
		return tw.Flush()
	}
}
