package catalogstore

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/redis/go-redis/v9"
)

// One ClickHouse and one Redis for the package; each test migrates a
// database of its own and uses tenants of its own.
var (
	clickHouse *devstack.ClickHouse
	redisSrv   *devstack.Redis
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "catalogstore", devstack.Want{ClickHouse: true, Redis: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	clickHouse, redisSrv = srv.ClickHouse, srv.Redis
	return m.Run()
}

var dbSeq atomic.Int64
var unsafeIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// env is one test's database, Redis client and master keys.
type env struct {
	t      *testing.T
	conn   driver.Conn
	rdb    *redis.Client
	master *vault.MasterKeys
	db     string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs clickhouse-server and redis-server; skipped in -short mode")
	}
	name := fmt.Sprintf("cs_%s_%d", unsafeIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), dbSeq.Add(1))
	if len(name) > 60 {
		name = name[:40] + fmt.Sprintf("_%d", dbSeq.Add(1))
	}
	cfg := chdb.Config{Addr: clickHouse.Addr, Database: name, User: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr})
	line, err := vault.NewMasterKeyLine()
	if err != nil {
		t.Fatal(err)
	}
	master, err := vault.ParseMasterKeys(line)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
		conn.Close()
		rdb.Close()
	})
	return &env{t: t, conn: conn, rdb: rdb, master: master, db: name}
}

// process is what one Kakin process holds: a replica and a store on it.
type process struct {
	replica *Replica
	store   *Store
	cancel  context.CancelFunc
	done    chan struct{}
}

// start runs a replica (loading, then polling every 50 ms) and a store on
// it, as one admin process would; stop it with p.stop.
func (e *env) start(opts ...func(*StoreOptions)) *process {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := NewReplica(e.conn, ReplicaOptions{PollInterval: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	p := &process{replica: r, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(p.done); _ = r.Run(ctx) }()
	if err := r.WaitReady(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	so := StoreOptions{Log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&so)
	}
	p.store = NewStore(e.conn, e.rdb, r, vault.New(e.conn, e.rdb, e.master), so)
	e.t.Cleanup(p.stop)
	return p
}

func (p *process) stop() {
	p.cancel()
	<-p.done
}

// tenant returns a tenant id unique to the test.
func tenantFor(t *testing.T, suffix string) string {
	return fmt.Sprintf("t%d-%s", dbSeq.Add(1), suffix)
}

func rev(n uint64) *uint64 { return &n }
