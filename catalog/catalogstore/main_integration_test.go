package catalogstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/redis/go-redis/v9"
)

// One ClickHouse and one Redis for the package (testenv); each test
// migrates a database of its own and uses tenants of its own.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true}) }

var dbSeq atomic.Int64

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
	conn, cfg := testenv.ClickHouse(t, "cs")
	name := cfg.Database
	rdb := testenv.Redis(t)
	line, err := vault.NewMasterKeyLine()
	if err != nil {
		t.Fatal(err)
	}
	master, err := vault.ParseMasterKeys(line)
	if err != nil {
		t.Fatal(err)
	}
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
