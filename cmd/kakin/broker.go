package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/deploy/devstack"
)

// runBroker runs the embedded Kafka-protocol broker (kfake) alone, in its own
// process, until SIGTERM or SIGINT: what `kakin dev` runs in process, but as
// something a fault test can kill (SIGKILL) and start again on the same
// address and data directory. With --data-dir the broker keeps its messages
// and committed group offsets there and reloads them on start (written
// without fsync unless --sync: a killed broker loses nothing, a machine crash
// may lose the last writes); without it, everything stays in memory.
func runBroker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kakin broker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:19092", "listen address of the broker (host must be 127.0.0.1; port 0 picks a free one)")
	dataDir := fs.String("data-dir", "", "directory the broker persists to and reloads from (empty: memory only)")
	sync := fs.Bool("sync", false, "fsync every produced batch (durable across power loss, ~10x slower)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := app.LogConfig{Level: *logLevel}.Logger(os.Stderr)
	port, err := portOf(*addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", *addr, err)
	}
	k, err := devstack.StartKafka(*dataDir, port, *sync)
	if err != nil {
		if app.AddrInUse(err) {
			return fmt.Errorf("the broker: %s is already in use by another process; pick another with --addr=HOST:PORT: %w", *addr, err)
		}
		return fmt.Errorf("the broker: %w", err)
	}
	log.Info("broker listening", "addr", k.Addrs[0], "data_dir", *dataDir, "sync", *sync, "pid", os.Getpid())
	<-ctx.Done()
	log.Info("broker stopping", slog.String("reason", context.Cause(ctx).Error()))
	k.Close()
	log.Info("broker stopped")
	return nil
}
