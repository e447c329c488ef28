package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/tenants"
)

const tenantsUsage = `Usage:
  kakin tenants create ID [--name NAME]
  kakin tenants list
  kakin tenants set-limits ID [--ingest-events-per-second N] [--ingest-requests-per-second N] [--admin-requests-per-minute N]
                            [--max-customers N] [--max-contracts N] [--max-detail-lines N]
  kakin tenants set-dedupe-window ID WINDOW
  kakin tenants set-billing-grace ID GRACE

Tenant ids are 1-64 of a-z, 0-9 and '-'. Limits of 0 use the process defaults.
WINDOW is how long the tenant's event ids are remembered for duplicate detection
and how old an event ingest still accepts: days ("40d") or a Go duration
("960h"), from 1 day to 400 days; 0 returns to the default (--dedupe-window).
Running processes apply it within --tenant-refresh.
GRACE is how long after a basic contract's billing period ended the tenant's
automatic billing run starts: days ("3d") or a Go duration ("36h"), up to 60
days; 0 returns to the default (1 day). The admin role reads it at each look.
The ClickHouse flags (--clickhouse-addr …) select the store; run "kakin migrate" first.
`

// runTenants manages tenants in the ClickHouse store.
func runTenants(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, tenantsUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var cfg app.Config
	fs := flag.NewFlagSet("kakin tenants "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), tenantsUsage); fs.PrintDefaults() }
	cfg.RegisterFlags(fs)
	switch sub {
	case "create":
		name := fs.String("name", "", "display name (default: the id)")
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 1 {
			return errors.New("usage: kakin tenants create ID [--name NAME]")
		}
		store, _, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		t, err := store.CreateTenant(ctx, pos[0], *name, cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("created tenant %s (%s)\n", t.ID, t.Name)
		return nil
	case "list":
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 0 {
			return errors.New("usage: kakin tenants list")
		}
		store, _, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		list, err := store.ListTenants(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tNAME\tEVENTS/S\tREQUESTS/S\tADMIN/MIN\tDEDUPE WINDOW\tBILLING GRACE\tCREATED\tUPDATED BY")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, limitText(t.Limits.IngestEventsPerSecond),
				limitText(t.Limits.IngestRequestsPerSecond), limitText(t.Limits.AdminRequestsPerMinute),
				windowText(t.DedupeWindow), windowText(t.BillingGrace), t.CreatedAt.Format("2006-01-02 15:04:05Z"), t.UpdatedBy)
		}
		return tw.Flush()
	case "set-limits":
		lim := limitFlags(fs)
		data := dataLimitFlags(fs)
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 1 {
			return errors.New("usage: kakin tenants set-limits ID [--ingest-events-per-second N] …")
		}
		store, _, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		if done, err := setDataLimits(ctx, store, fs, pos[0], data); err != nil || done {
			return err
		}
		t, err := store.SetTenantLimits(ctx, pos[0], *lim, cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("tenant %s limits: events/s %s, requests/s %s, admin/min %s\n", t.ID, limitText(t.Limits.IngestEventsPerSecond),
			limitText(t.Limits.IngestRequestsPerSecond), limitText(t.Limits.AdminRequestsPerMinute))
		return nil
	case "set-dedupe-window":
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 2 {
			return errors.New("usage: kakin tenants set-dedupe-window ID WINDOW (e.g. 40d; 0 for the default)")
		}
		window, err := parseWindow(pos[1])
		if err != nil {
			return err
		}
		store, _, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		t, err := store.SetTenantDedupeWindow(ctx, pos[0], window, cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("tenant %s dedupe window: %s (processes apply it within %s)\n", t.ID, windowText(t.DedupeWindow), cfg.Tenants.Refresh)
		return nil
	case "set-billing-grace":
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 2 {
			return errors.New("usage: kakin tenants set-billing-grace ID GRACE (e.g. 3d; 0 for the default)")
		}
		grace, err := parseWindow(pos[1])
		if err != nil {
			return err
		}
		store, _, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		t, err := store.SetTenantBillingGrace(ctx, pos[0], grace, cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("tenant %s billing grace: %s\n", t.ID, windowText(t.BillingGrace))
		return nil
	default:
		fmt.Fprint(os.Stderr, tenantsUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
}

// limitFlags registers the per-client/per-tenant limit flags on fs.
func limitFlags(fs *flag.FlagSet) *tenants.Limits {
	var l tenants.Limits
	fs.IntVar(&l.IngestEventsPerSecond, "ingest-events-per-second", 0, "events per second on POST /v1/usage (0: default)")
	fs.IntVar(&l.IngestRequestsPerSecond, "ingest-requests-per-second", 0, "ingest requests per second (0: default)")
	fs.IntVar(&l.AdminRequestsPerMinute, "admin-requests-per-minute", 0, "admin API requests per minute (0: default)")
	return &l
}

func limitText(n int) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprint(n)
}

// parseWindow parses "40d" (days) or a Go duration; "0" is the default.
func parseWindow(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("window %q: want whole days such as 40d, or a duration such as 960h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("window %q: want whole days such as 40d, or a duration such as 960h", s)
	}
	return d, nil
}

// windowText renders a tenant's window: "default", "40d" or a duration.
func windowText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "default"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

// parseFlagsAndArgs applies the environment and the command line like
// app.ParseFlags, but also accepts flags after positional arguments
// ("create acme --name Acme"). It returns the positional arguments.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := app.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	var pos []string
	for rest := fs.Args(); len(rest) > 0; rest = fs.Args() {
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

func ignoreHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// openStores connects to the ClickHouse database of cfg and returns its
// tenant registry and its API client store.
func openStores(ctx context.Context, cfg app.Config) (*tenants.Store, *auth.Store, func(), error) {
	conn, err := chdb.Open(ctx, cfg.ClickHouse.Chdb())
	if err != nil {
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && ex.Code == 81 { // UNKNOWN_DATABASE
			return nil, nil, nil, fmt.Errorf("clickhouse database %q does not exist: run `kakin migrate` first (%w)", cfg.ClickHouse.Database, err)
		}
		return nil, nil, nil, err
	}
	registry := tenants.NewStore(conn)
	return registry, auth.NewStore(conn, registry), func() { conn.Close() }, nil
}

// cliActor names who runs an admin command, for the audit log.
func cliActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return strings.TrimSuffix("cli:"+name+"@"+host, "@")
}
