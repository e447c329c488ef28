package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/vault"
)

const keysUsage = `Usage:
  kakin keys rewrap [--master-key-file FILE]

After a new master key was put on the first line of the master key file
(every process must have it), rewrap wraps every tenant's data key with it
as well. Then the old key's line can be removed. Personal data itself is
never re-encrypted.
`

func runKeys(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "rewrap" {
		fmt.Fprint(os.Stderr, keysUsage)
		return errors.New("missing or unknown subcommand")
	}
	var cfg app.Config
	fs := flag.NewFlagSet("kakin keys rewrap", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), keysUsage); fs.PrintDefaults() }
	cfg.RegisterFlags(fs)
	if _, err := parseFlagsAndArgs(fs, args[1:]); err != nil {
		return ignoreHelp(err)
	}
	master, err := vault.LoadMasterKeys(cfg.Admin.MasterKeyFile)
	if err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse.Chdb())
	if err != nil {
		return err
	}
	defer conn.Close()
	rdb, err := cfg.Redis.Client()
	if err != nil {
		return err
	}
	defer rdb.Close()
	n, err := vault.New(conn, rdb, master).Rewrap(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("rewrapped %d data keys with master key %s\n", n, master.FirstKID())
	return nil
}
