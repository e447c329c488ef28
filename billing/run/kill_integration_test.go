package run

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/testenv"
)

// killTenant is the tenant of the SIGKILL test.
const killTenant = "killed"

// killNow is the business clock of the SIGKILL test (after November).
var killNow = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

// The `kakin billing close` process closing a period of 20,000 customers
// (the bench catalogue stored in the catalogue store: 2 fixed fees, 1,000
// and 2,000 JPY, plus 10 % tax: 3,300 JPY a receivable, 3 lines) is
// SIGKILLed once part of its receivables are final (its finalise inserts
// are 10,000 each); running the command again finishes the close: every
// receivable exactly once (no duplicate id among the raw rows), final,
// exact, and numbered 1..N without a gap or a double in the close's
// (customer) order. KAKIN_TEST_KILL_CUSTOMERS sets N (make chaos-close:
// 100,000, and the second close waits out the dead one's lease).
func TestCloseResumesAfterSIGKILL(t *testing.T) {
	n := 20_000
	if s := os.Getenv("KAKIN_TEST_KILL_CUSTOMERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	conn, cfg := testenv.ClickHouse(t, "kill")
	rdb := testenv.Redis(t)
	quiet := slog.New(slog.DiscardHandler)

	// The catalogue, through the catalogue store the command reads.
	c := benchCatalogue(n)
	c.Tenant = killTenant
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Log: quiet})
	if err := replica.Load(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// 3 contracts a customer (a service and two discount contracts): above
	// the default limit at 100,000 customers.
	limits := func(context.Context, string) (catalogstore.DataLimits, error) {
		return catalogstore.DataLimits{Customers: n, Contracts: 3 * n}, nil
	}
	store := catalogstore.NewStore(conn, rdb, replica, nil, catalogstore.StoreOptions{Log: quiet, DataLimits: limits, LockTTL: 10 * time.Minute})
	if _, err := store.Transact(ctx, killTenant, "test", func(tx *catalogstore.Tx) error {
		for i := 0; i < n; i++ {
			tx.Put(catalogstore.KindCustomer, &catalog.Customer{ID: fmt.Sprintf("c%06d", i)})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ApplyCatalogue(ctx, killTenant, "test", c); err != nil {
		t.Fatal(err)
	}
	t.Logf("catalogue of %d customers stored in %s", n, time.Since(start).Round(time.Millisecond))

	bin := filepath.Join(t.TempDir(), "kakin")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/kakin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kakin: %v\n%s", err, out)
	}
	closeCmd := func(name string) (*exec.Cmd, string) {
		cmd := exec.Command(bin, "billing", "close", "--tenant", killTenant, "--period", "2026-11", "--no-pipeline-wait",
			"--clickhouse-addr", testenv.ClickHouseAddr(), "--clickhouse-database", cfg.Database, "--redis-addr", testenv.RedisAddr())
		cmd.Env = append(os.Environ(), clock.OffsetEnv+"="+time.Until(killNow).Round(time.Second).String())
		out := filepath.Join(t.TempDir(), name)
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd.Stdout, cmd.Stderr = f, f
		return cmd, out
	}
	finals := func() uint64 {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM receivables FINAL WHERE tenant = ? AND status = 'final'", killTenant).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	first, out := closeCmd("first")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	// Wait for the first finalised receivables (an event: the close's first
	// insert of finals), then SIGKILL.
	deadline := time.Now().Add(10 * time.Minute)
	for finals() == 0 {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(out)
			t.Fatalf("kakin billing close exited before finalising anything: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no receivable finalised within 10 minutes")
		}
		time.Sleep(20 * time.Millisecond) // polling ClickHouse for the event, with a deadline
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	killedAt := finals()
	if killedAt == 0 || killedAt >= uint64(n) {
		t.Fatalf("killed with %d of %d receivables final: not in the middle (raise KAKIN_TEST_KILL_CUSTOMERS)", killedAt, n)
	}
	t.Logf("SIGKILL of kakin billing close with %d of %d receivables final", killedAt, n)

	// The dead process still holds the tenant's billing lock until its
	// lease ends (lockTTL, a minute; the expiry is redislock's, tested
	// there). Unless KAKIN_TEST_KILL_WAIT_LEASE is set, the test ends the
	// lease itself (the key must be there: the killed close held it) rather
	// than spend the minute in make test.
	if os.Getenv("KAKIN_TEST_KILL_WAIT_LEASE") == "" {
		if n, err := rdb.Del(ctx, "billing:lock:"+killTenant).Result(); err != nil || n != 1 {
			t.Fatalf("the killed close's billing lock: deleted %d, %v; want the one it held", n, err)
		}
	}
	again, out := closeCmd("again")
	start = time.Now()
	if err := again.Run(); err != nil {
		b, _ := os.ReadFile(out)
		t.Fatalf("kakin billing close again: %v\n%s", err, b)
	}
	t.Logf("the second close took %s", time.Since(start).Round(time.Millisecond))
	var distinct, rows uint64
	if err := conn.QueryRow(ctx, "SELECT count(DISTINCT receivable_id) FROM receivables WHERE tenant = ?", killTenant).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != uint64(n) {
		t.Errorf("%d distinct receivable ids among the raw rows, want %d", distinct, n)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM receivable_lines FINAL WHERE tenant = ? AND deleted = 0", killTenant).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(3*n) {
		t.Errorf("%d current detail lines, want %d", rows, 3*n)
	}
	recs, err := billingdb.New(conn).Period(ctx, killTenant, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d receivables, want %d", len(recs), n)
	}
	byCustomer := map[string]*billingdb.Stored{}
	for _, r := range recs {
		byCustomer[r.Customer] = r
	}
	for i := 0; i < n; i++ {
		cu := fmt.Sprintf("c%06d", i)
		r := byCustomer[cu]
		if r == nil || r.Status != billing.StatusFinal || r.NumberSeq != uint64(i+1) || !r.Total.Equal(dec("3300")) || r.LineCount != 3 ||
			r.ID != billing.ReceivableID(killTenant, "b"+cu, "2026-11") {
			t.Fatalf("customer %s: %+v, want final number %d, 3,300 JPY in 3 lines", cu, r, i+1)
		}
	}
	if nums, err := billingdb.New(conn).MaxNumber(ctx, killTenant); err != nil || nums != uint64(n) {
		t.Errorf("highest number %d %v, want %d", nums, err, n)
	}
}
