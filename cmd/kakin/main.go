// Command kakin is the single Kakin binary. Its subcommands run any set of
// pipeline roles (serve), prepare topics and tables (migrate), start a whole
// local pipeline (dev), generate load (loadgen) and print the version.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kakin-dev/kakin/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `kakin — streaming usage ingestion and rating

Usage:
  kakin serve   [flags]   run roles (--roles=all, api, pipeline or a comma list of ingest,dedupe,rater,aggregator,admin)
  kakin migrate [flags]   create Kafka topics and ClickHouse tables (idempotent)
  kakin dev     [flags]   start Redis, ClickHouse and an embedded broker under ./.run, migrate, and serve all roles
  kakin broker  [--addr A] [--data-dir D] [--sync]
                          run only the embedded Kafka-protocol broker (what dev runs in process), until SIGTERM
  kakin loadgen [flags]   post realistic usage at a target rate and verify the totals in ClickHouse
  kakin tenants create ID [--name N] | list | set-limits ID [...]
  kakin clients create --tenant T --name N --scopes usage:write,... | list --tenant T | revoke --tenant T ID
  kakin periods close|reopen --tenant T --period YYYY-MM | list --tenant T
  kakin billing run|close|reopen --tenant T --period YYYY-MM [...] | number-format --tenant T --format F
                          receivables: the rating batch, the period close (final, numbered) and reopen
  kakin rate --catalog FILE --usage FILE [--period YYYY-MM] [--format table|json]
                          price usage offline with the rater's engine (what-if)
  kakin usage send -f FILE [--mode atomic|partial] [--url U] [--client-id I --client-secret S]
                          upload a CSV or NDJSON usage file as an import job and print the job's result
  kakin catalog export --tenant T [-o FILE] | apply --tenant T -f FILE [--yes]
  kakin keys rewrap       wrap every tenant's data key with the first master key (after a rotation)
  kakin config            print every flag and environment variable as a Markdown table
  kakin version           print the version

Every flag can also be set as an environment variable: --kafka-brokers is KAKIN_KAFKA_BROKERS.
Run "kakin <command> -h" for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		setGC()
		err = runServe(ctx, args)
	case "migrate":
		err = runMigrate(ctx, args)
	case "dev":
		setGC()
		err = runDev(ctx, args)
	case "broker":
		err = runBroker(ctx, args)
	case "loadgen":
		err = runLoadgen(ctx, args)
	case "tenants":
		err = runTenants(ctx, args)
	case "clients":
		err = runClients(ctx, args)
	case "billing":
		err = runBilling(ctx, args)
	case "periods":
		err = runPeriods(ctx, args)
	case "rate":
		err = runRate(args, os.Stdout)
	case "usage":
		err = runUsage(ctx, args)
	case "catalog":
		err = runCatalog(ctx, args)
	case "keys":
		err = runKeys(ctx, args)
	case "config":
		runConfig(os.Stdout)
	case "version", "--version", "-v":
		fmt.Println("kakin", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "kakin: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kakin "+cmd+":", err)
		os.Exit(1)
	}
}

// loadConfig parses the flags of every module (and the environment) for
// the command name.
func loadConfig(name string, args []string) (app.Config, error) {
	var cfg app.Config
	fs := flag.NewFlagSet("kakin "+name, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := app.ParseFlags(fs, args); err != nil {
		return cfg, err
	}
	return cfg, nil
}
