package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/kakin-dev/kakin/tenants"
)

// runDev starts the local stack (Redis, ClickHouse and an embedded Kafka
// broker, data under --data-dir), migrates, and serves every role in this
// process until interrupted. Run it again on the same directory and the data
// is still there.
func runDev(ctx context.Context, args []string) error {
	var cfg app.Config
	fs := flag.NewFlagSet("kakin dev", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	dataDir := fs.String("data-dir", ".run", "directory for Redis, ClickHouse and Kafka data")
	chHTTPPort := fs.Int("clickhouse-http-port", 18123, "ClickHouse HTTP port of the local stack")
	kafkaSync := fs.Bool("kafka-sync", false, "fsync every produce in the embedded broker (durable across power loss, ~10x slower)")
	if err := app.ParseFlags(fs, args); err != nil {
		return err
	}
	log := cfg.Log.Logger(os.Stderr)
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := devstack.EnsureInstalled(ctx, log); err != nil {
		return err
	}
	redisPort, err := portOf(cfg.Redis.Addr)
	if err != nil {
		return fmt.Errorf("--redis-addr: %w", err)
	}
	chPort, err := portOf(cfg.ClickHouse.Addr)
	if err != nil {
		return fmt.Errorf("--clickhouse-addr: %w", err)
	}
	brokers := cfg.Kafka.BrokerList()
	external := os.Getenv("KAFKA_BROKERS") != ""
	kafkaPort := 0
	if !external {
		if len(brokers) != 1 {
			return fmt.Errorf("--kafka-brokers: the embedded broker takes one address, got %q", cfg.Kafka.Brokers)
		}
		if kafkaPort, err = portOf(brokers[0]); err != nil {
			return fmt.Errorf("--kafka-brokers: %w", err)
		}
	}

	log.Info("starting local stack", "data_dir", dir)
	redis, err := devstack.StartRedis(ctx, filepath.Join(dir, "redis"), redisPort)
	if err != nil {
		return portInUseError(err, app.AddrInUse(err) || portTaken(redisPort), "the local Redis", redisPort, "redis-addr", "HOST:PORT")
	}
	defer redis.Stop()
	ch, err := devstack.StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), chPort, *chHTTPPort)
	if err != nil {
		return clickHouseStartError(err, chPort, *chHTTPPort)
	}
	defer ch.Stop()
	if !external {
		k, err := devstack.StartKafka(filepath.Join(dir, "kafka"), kafkaPort, *kafkaSync)
		if err != nil {
			return portInUseError(err, app.AddrInUse(err), "the embedded Kafka broker", kafkaPort, "kafka-brokers", "HOST:PORT")
		}
		defer k.Close()
		durability := "page cache (no fsync): survives a crash of kakin, not of the machine"
		if *kafkaSync {
			durability = "fsync per produce"
		}
		log.Info("embedded kafka broker", "addr", k.Addrs[0], "durability", durability)
	} else {
		log.Info("using external kafka", "brokers", cfg.Kafka.Brokers)
	}

	if err := migrate(ctx, cfg, log); err != nil {
		return err
	}
	if cfg.Ingest.ImportDir == "" {
		cfg.Ingest.ImportDir = filepath.Join(dir, "imports")
	}
	if !flagSet(fs, "token-keys-file") {
		cfg.API.TokenKeysFile = filepath.Join(dir, "token-keys")
	}
	if _, err := auth.GenerateKeyFile(cfg.API.TokenKeysFile); err != nil {
		return err
	}
	if !flagSet(fs, "master-key-file") {
		cfg.Admin.MasterKeyFile = filepath.Join(dir, "master-key")
	}
	if _, err := vault.GenerateMasterKeyFile(cfg.Admin.MasterKeyFile); err != nil {
		return err
	}
	demo, err := bootstrapDemo(ctx, cfg, dir)
	if err != nil {
		return err
	}
	if err := bootstrapCatalog(ctx, cfg, log); err != nil {
		return fmt.Errorf("demo catalogue: %w", err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-a.Ready():
			printBanner(a.Addr(), cfg, ch.HTTPAddr, demo)
		case <-ctx.Done():
		}
	}()
	return a.Run(ctx)
}

// portInUseError explains a local-stack server that did not start because
// its port is taken (inUse) with the flag and variable that move it; any
// other failure is returned as it is.
func portInUseError(err error, inUse bool, what string, port int, flagName, form string) error {
	if !inUse {
		return err
	}
	return app.ExplainListen(err, true, what, loopback(port), flagName, form)
}

// clickHouseStartError names the flag that moves the local ClickHouse's
// taken port: its native port (--clickhouse-addr) or its HTTP port.
func clickHouseStartError(err error, native, http int) error {
	switch {
	case portTaken(native):
		return portInUseError(err, true, "the local ClickHouse (native protocol)", native, "clickhouse-addr", "HOST:PORT")
	case portTaken(http):
		return portInUseError(err, true, "the local ClickHouse's HTTP interface", http, "clickhouse-http-port", "PORT")
	case app.AddrInUse(err):
		return fmt.Errorf("the local ClickHouse: a port it needs is in use; move its native port with --clickhouse-addr=HOST:PORT or %s=HOST:PORT, its HTTP port with --clickhouse-http-port=PORT or %s=PORT: %w",
			app.EnvName("clickhouse-addr"), app.EnvName("clickhouse-http-port"), err)
	}
	return err
}

// portTaken reports whether another process listens on port of the
// loopback address, where the local stack's servers listen. Port 0 (any
// free port) is never taken.
func portTaken(port int) bool {
	if port == 0 {
		return false
	}
	ln, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return app.AddrInUse(err)
	}
	ln.Close()
	return false
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// demoClient is the API client `kakin dev` creates for the demo tenant on
// its first run. Its secret is kept in the data directory so that later runs
// can print working examples: a development convenience only.
type demoClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// bootstrapDemo creates the demo tenants (those of the demo price list) and a
// demo client with every scope, once.
func bootstrapDemo(ctx context.Context, cfg app.Config, dir string) (demoClient, error) {
	registry, store, closeStore, err := openStores(ctx, cfg)
	if err != nil {
		return demoClient{}, err
	}
	defer closeStore()
	for _, t := range []string{"demo", "demo-usd", "loadgen"} {
		if _, err := registry.CreateTenant(ctx, t, t, "kakin dev"); err != nil && !errors.Is(err, tenants.ErrExists) {
			return demoClient{}, err
		}
	}
	path := filepath.Join(dir, "demo-client.json")
	var dc demoClient
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &dc) == nil && dc.ID != "" {
		return dc, nil
	}
	for _, t := range []string{"demo", "loadgen"} {
		id, secret, err := store.CreateClient(ctx, t, "demo (created by kakin dev)", auth.AllScopes, tenants.Limits{}, "kakin dev")
		if err != nil {
			return demoClient{}, err
		}
		c := demoClient{ID: id, Secret: secret}
		b, _ := json.MarshalIndent(c, "", "  ")
		name := "demo-client.json"
		if t == "loadgen" {
			name = "loadgen-client.json"
		} else {
			dc = c
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return demoClient{}, err
		}
	}
	return dc, nil
}

// flagSet reports whether the flag was given on the command line or in the
// environment.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, env := os.LookupEnv(app.EnvName(name))
	return set || env
}

func printBanner(httpAddr string, cfg app.Config, chHTTP string, demo demoClient) {
	base := "http://" + httpAddr
	chHost, chPort, err := net.SplitHostPort(cfg.ClickHouse.Addr)
	if err != nil {
		chHost, chPort = cfg.ClickHouse.Addr, "9000"
	}
	fmt.Printf(`
Kakin is running (all roles, demo tenant "demo", customers cust-001..003, JPY).

  HTTP API     %[1]s   (/v1/usage, /v1/usage/imports, /v1/jobs, /v1/charges, /openapi.json, /docs, /metrics, /healthz, /readyz)
  ClickHouse   native %[2]s, http://%[3]s  (database %[4]s)
  Redis        %[5]s
  Kafka        %[6]s
  Demo client  %[9]s (secret in the data directory, demo-client.json)

Get an access token for the demo client:
  TOKEN=$(curl -s -u '%[9]s:%[10]s' -d grant_type=client_credentials %[1]s/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

Post usage:
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' %[1]s/v1/usage --data-binary $'{"id":"e-1","customer":"cust-001","element":"api_calls","quantity":1200,"time":"%[7]s"}\n{"id":"e-2","customer":"cust-001","element":"transfer_gb","quantity":"2.5","time":"%[7]s"}'

Import a file of usage records (CSV with a header id,customer,element,quantity,time, or NDJSON):
  %[11]s usage send -f usage.csv --url %[1]s --client-id '%[9]s' --client-secret '%[10]s'

Read the charges a few seconds later:
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/charges?customer=cust-001&period=%[8]s'

Read one service contract's charges per month (pay-per-use):
  curl -s -H "Authorization: Bearer $TOKEN" '%[1]s/v1/service-contracts/{id}/charges'

Open a SQL prompt on the data (finance views with FINAL built in: docs/FINANCE.md):
  clickhouse-client --host %[12]s --port %[13]s --database %[4]s

Ctrl-C stops everything; data stays under the data directory.
`, base, cfg.ClickHouse.Addr, chHTTP, cfg.ClickHouse.Database, cfg.Redis.Addr, cfg.Kafka.Brokers, nowRFC3339(), nowPeriod(), demo.ID, demo.Secret, selfName(), chHost, chPort)
}

// selfName is how to run this binary again from the current directory:
// "kakin" when that is on PATH and is this binary (after make install),
// else the path it was started by (./bin/kakin under make run).
func selfName() string {
	if onPath, err := exec.LookPath("kakin"); err == nil {
		self, err1 := os.Executable()
		a, err2 := os.Stat(onPath)
		b, err3 := os.Stat(self)
		if err1 == nil && err2 == nil && err3 == nil && os.SameFile(a, b) {
			return "kakin"
		}
	}
	return os.Args[0]
}
