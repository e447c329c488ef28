package run

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/redis/go-redis/v9"
)

// childEnv carries the child's ClickHouse database, Redis address and
// customer count: "database redis n".
const childEnv = "KAKIN_TEST_BILLING_CLOSE_CHILD"

// killTenant is the tenant of the SIGKILL test.
const killTenant = "killed"

// killNow is the business clock of the SIGKILL test (after November).
var killNow = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

// killService is the billing service of the SIGKILL test over conn and rdb:
// n customers of the bench catalogue (2 fixed fees, 1,000 and 2,000 JPY,
// plus 10 % tax: 3,300 JPY a receivable, 3 lines).
func killService(conn driver.Conn, rdb redis.UniversalClient, n int) *Service {
	c := benchCatalogue(n)
	c.Tenant = killTenant
	return New(Options{Store: billingdb.New(conn), Records: usagedb.NewRecords(conn), Catalogues: catalogues{killTenant: c},
		Periods: corrections.NewPeriods(conn), Redis: rdb, Now: func() time.Time { return killNow }, Log: slog.New(slog.DiscardHandler)})
}

// closeChild is the child process: it closes November and is killed
// somewhere in the middle.
func closeChild() int {
	var database, addr string
	var n int
	if _, err := fmt.Sscan(os.Getenv(childEnv), &database, &addr, &n); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx := context.Background()
	conn, err := chdb.Open(ctx, chdb.Config{Addr: testenvAddr(), Database: database, User: "default"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	if _, err := killService(conn, rdb, n).Close(ctx, killTenant, "2026-11", "child"); err != nil {
		fmt.Fprintln(os.Stderr, "child close:", err)
		return 1
	}
	return 0
}

// testenvAddr is the ClickHouse address the parent passed down.
func testenvAddr() string { return os.Getenv(childEnv + "_CH") }

// The process closing a period of 30,000 customers is SIGKILLed once part of
// its receivables are finalised (3 inserts of 10,000); closing again in
// another process finishes it: every receivable exactly once (no duplicate
// id among the raw rows), final, exact (3,300 JPY, 3 lines), and numbered
// 1..30,000 without a gap or a double, in the close's (customer) order.
func TestCloseResumesAfterSIGKILL(t *testing.T) {
	n := 30_000
	if s := os.Getenv("KAKIN_TEST_KILL_CUSTOMERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	conn, cfg := testenv.ClickHouse(t, "kill")
	rdb := testenv.Redis(t)
	finals := func() uint64 {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM receivables FINAL WHERE tenant = ? AND status = 'final'", killTenant).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", childEnv, cfg.Database, testenv.RedisAddr(), n),
		childEnv+"_CH="+testenv.ClickHouseAddr())
	out, err := os.CreateTemp(t.TempDir(), "child")
	if err != nil {
		t.Fatal(err)
	}
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	// Wait for the first finalised receivables (an event: the close's first
	// insert of finals), then SIGKILL.
	deadline := time.Now().Add(5 * time.Minute)
	for finals() == 0 {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("the child exited before finalising anything: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no receivable finalised within 5 minutes")
		}
		time.Sleep(20 * time.Millisecond) // polling ClickHouse for the event, with a deadline
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	killedAt := finals()
	if killedAt == 0 || killedAt >= uint64(n) {
		t.Fatalf("killed with %d of %d receivables final: not in the middle (raise KAKIN_TEST_KILL_CUSTOMERS)", killedAt, n)
	}
	t.Logf("SIGKILL with %d of %d receivables final", killedAt, n)

	// Another process (this one) closes again: its lock waits out the dead
	// holder's lease (a minute: most of this test's time).
	res, err := killService(conn, rdb, n).Close(ctx, killTenant, "2026-11", "resume")
	if err != nil {
		t.Fatal(err)
	}
	if res.LastSeq != uint64(n) || res.Finalised != uint64(n)-killedAt {
		t.Errorf("resumed close %+v, want %d finalised up to number %d", res, uint64(n)-killedAt, n)
	}
	var distinct uint64
	if err := conn.QueryRow(ctx, "SELECT count(DISTINCT receivable_id) FROM receivables WHERE tenant = ?", killTenant).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != uint64(n) {
		t.Errorf("%d distinct receivable ids among the raw rows, want %d", distinct, n)
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
}
