// Package testenv is the test harness every integration test package uses:
// its TestMain calls Main, which starts the real servers the package wants
// (Redis, ClickHouse, the embedded Kafka-protocol broker) once for the
// package, on free ports, and stops them when the tests are done; tests then
// take what they need from it:
//
//   - ClickHouse(t, prefix): a fresh migrated database of the test's own,
//     dropped when the test ends (NewDatabase: only its name, for a test
//     that migrates it itself);
//   - Redis(t): a client of the package's redis-server, closed when the test
//     ends (tests keep to keys and tenants of their own);
//   - Brokers / Broker(t): the package's broker.
//
// In -short mode Main starts nothing and Need skips the test.
//
// It is plumbing for tests only: no production code imports it.
package testenv

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/redis/go-redis/v9"
)

// Want names the servers a test package needs.
type Want struct {
	Redis, ClickHouse, Kafka bool
}

// startTimeout bounds starting the servers and running the setup functions.
// Generous: on a loaded 2-core machine, with other test packages starting
// theirs beside, a clickhouse-server can take tens of seconds.
const startTimeout = 3 * time.Minute

var (
	started bool // Main started the servers (not -short)
	dir     string
	redisS  *devstack.Redis
	chS     *devstack.ClickHouse
	chAddr  string
	kafkaS  *devstack.Kafka

	cleanupMu sync.Mutex
	cleanups  []func()
)

// Main is a package's TestMain: it parses the flags, starts the servers want
// names (not in -short mode), runs setup (in order; for package-wide
// fixtures such as topics or clients, which may register their teardown with
// AtExit), runs the tests, stops everything and exits with the tests' code.
func Main(m *testing.M, want Want, setup ...func(ctx context.Context) error) {
	os.Exit(run(m, want, setup))
}

func run(m *testing.M, want Want, setup []func(ctx context.Context) error) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // the tests that need servers skip themselves (Need)
	}
	pkg := packageName()
	defer runCleanups()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := start(ctx, pkg, want); err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: %v\n", pkg, err)
		return 1
	}
	for _, f := range setup {
		if err := f(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "%s tests: setup: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}

// start starts the servers want names; their teardown is registered with
// AtExit.
func start(ctx context.Context, pkg string, want Want) error {
	if want.Redis || want.ClickHouse {
		if err := devstack.EnsureInstalled(ctx, slog.New(slog.DiscardHandler)); err != nil {
			return fmt.Errorf("install dependencies: %w", err)
		}
	}
	var err error
	if dir, err = os.MkdirTemp("", "testenv-kakin-"+pkg+"-"); err != nil {
		return err
	}
	AtExit(func() { os.RemoveAll(dir) })
	started = true
	if want.ClickHouse {
		if chS, err = devstack.StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), 0, 0); err != nil {
			return err
		}
		AtExit(func() { _ = chS.Stop() })
		chAddr = chS.Addr
	}
	if want.Redis {
		if redisS, err = devstack.StartRedis(ctx, filepath.Join(dir, "redis"), 0); err != nil {
			return err
		}
		AtExit(func() { _ = redisS.Stop() })
	}
	if want.Kafka {
		if kafkaS, err = devstack.StartKafka("", 0, false); err != nil {
			return err
		}
		AtExit(kafkaS.Close)
	}
	return nil
}

// AtExit registers f to run after the package's tests, before the servers
// stop (the last registered runs first).
func AtExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func runCleanups() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// packageName is the last element of the test binary's name ("rater" of
// rater.test), for temporary directories and messages.
func packageName() string {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	if name == "" {
		return "kakin"
	}
	return unsafeIdent.ReplaceAllString(strings.ToLower(name), "_")
}

// Need skips t in -short mode, where Main starts no server.
func Need(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs real servers; skipped in -short mode")
	}
	if !started {
		t.Fatal("testenv: the package's TestMain does not call testenv.Main")
	}
}

// Dir is a temporary directory of the package's run, removed after its
// tests (for package-wide fixtures of their own, such as a Redis Cluster).
func Dir() string { return dir }

// RedisServer is the package's redis-server (nil unless Main wanted Redis),
// for tests that stop, kill or restart it.
func RedisServer() *devstack.Redis { return redisS }

// RedisAddr is the package's redis-server address.
func RedisAddr() string {
	if redisS == nil {
		return ""
	}
	return redisS.Addr
}

// Redis returns a client of the package's redis-server, closed when t ends.
// Tests share the server: each keeps to keys (tenants) of its own.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	Need(t)
	if redisS == nil {
		t.Fatal("testenv: Redis not wanted by the package's testenv.Main")
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisS.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// ClickHouseServer is the package's clickhouse-server (nil unless Main
// wanted ClickHouse).
func ClickHouseServer() *devstack.ClickHouse { return chS }

// ClickHouseAddr is the native address of the package's clickhouse-server.
func ClickHouseAddr() string { return chAddr }

var (
	dbSeq       atomic.Int64
	unsafeIdent = regexp.MustCompile(`[^a-z0-9_]+`)
)

// DatabaseName returns a database name unique to the test within this run
// and among runs beside it (the process id is part of it): prefix, the
// test's name and a sequence number, at most 60 characters.
func DatabaseName(t testing.TB, prefix string) string {
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), dbSeq.Add(1))
	name := prefix + "_" + unsafeIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if max := 60 - len(suffix); len(name) > max {
		name = name[:max]
	}
	return name + suffix
}

// ClickHouse migrates a fresh database of the test's own (named by
// DatabaseName) and returns a connection to it and its config; the database
// is dropped and the connection closed when the test ends.
func ClickHouse(t testing.TB, prefix string) (driver.Conn, chdb.Config) {
	t.Helper()
	cfg := chdb.Config{Addr: chAddr, Database: NewDatabase(t, prefix), User: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, cfg
}

// NewDatabase names a database of the test's own (DatabaseName) on the
// package's ClickHouse without creating it, for a test that creates and
// migrates it another way (e2e runs `kakin migrate`); whatever is there by
// that name is dropped when the test ends.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	Need(t)
	if chAddr == "" {
		t.Fatal("testenv: ClickHouse not wanted by the package's testenv.Main")
	}
	name := DatabaseName(t, prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	return name
}

func dropDatabase(ctx context.Context, name string) error {
	conn, err := chdb.Open(ctx, chdb.Config{Addr: chAddr, Database: "default", User: "default"})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
}

// MigrateOnce migrates one database for the whole package (named
// prefix_<pid>) from a setup function of Main, for packages whose tests
// share one and keep to tenants of their own; it is dropped after the
// tests.
func MigrateOnce(ctx context.Context, prefix string) (driver.Conn, chdb.Config, error) {
	cfg := chdb.Config{Addr: chAddr, Database: fmt.Sprintf("%s_%d", prefix, os.Getpid()), User: "default"}
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		return nil, cfg, err
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		return nil, cfg, err
	}
	AtExit(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = dropDatabase(ctx, cfg.Database)
	})
	return conn, cfg, nil
}

// Kafka is the package's in-memory broker (nil unless Main wanted Kafka).
func Kafka() *devstack.Kafka { return kafkaS }

// Brokers are the addresses of the package's broker.
func Brokers() []string {
	if kafkaS == nil {
		return nil
	}
	return kafkaS.Addrs
}

// Broker returns the package's broker addresses for t (skipping it in
// -short mode).
func Broker(t testing.TB) []string {
	t.Helper()
	Need(t)
	if kafkaS == nil {
		t.Fatal("testenv: Kafka not wanted by the package's testenv.Main")
	}
	return kafkaS.Addrs
}
