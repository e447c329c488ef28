package aggregator

import (
	"context"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/internal/usagetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
)

// Every test migrates a ClickHouse database of its own on the server the
// package's tests share (testenv); in -short mode the tests skip themselves.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true}) }

// newDB migrates a fresh database for the test and returns a connection to
// it; the database is dropped when the test ends.
func newDB(t testing.TB) driver.Conn {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "agg")
	return conn
}

// newStage returns an aggregator stage on conn with metrics of its own.
func newStage(conn driver.Conn) *Stage {
	return NewStage(conn, stream.NewMetrics(prometheus.NewRegistry()), prometheus.NewRegistry())
}

// The message fixtures are shared with the other usage-table packages
// (internal/usagetest).
var (
	march      = usagetest.March
	ratedTime  = usagetest.RatedTime
	dec        = usagetest.Dec
	line       = usagetest.Line
	jsonValue  = usagetest.JSONValue
	ratedMsg   = usagetest.RatedMsg
	dupMsg     = usagetest.DupMsg
	unratedMsg = usagetest.UnratedMsg
	duplicate  = usagetest.Duplicate
	unrated    = usagetest.Unrated
)

// tableState is what a reader sees of the three tables, with FINAL.
type tableState struct {
	Rated      uint64
	Amount     decimal.Decimal
	Duplicates uint64
	Unrated    uint64
}

func (s tableState) String() string {
	return fmt.Sprintf("rated %d (sum %s), duplicates %d, unrated %d", s.Rated, s.Amount, s.Duplicates, s.Unrated)
}

func (s tableState) equal(o tableState) bool {
	return s.Rated == o.Rated && s.Amount.Equal(o.Amount) && s.Duplicates == o.Duplicates && s.Unrated == o.Unrated
}

func state(t *testing.T, conn driver.Conn) tableState {
	t.Helper()
	ctx := context.Background()
	var s tableState
	if err := conn.QueryRow(ctx, "SELECT count(), sum(amount) FROM rated_usage FINAL").Scan(&s.Rated, &s.Amount); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM usage_duplicates FINAL").Scan(&s.Duplicates); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM usage_unrated FINAL").Scan(&s.Unrated); err != nil {
		t.Fatal(err)
	}
	return s
}

// rawCounts counts the rows stored, without FINAL.
func rawCounts(t *testing.T, conn driver.Conn) [3]uint64 {
	t.Helper()
	var out [3]uint64
	for i, table := range []string{"rated_usage", "usage_duplicates", "usage_unrated"} {
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+table).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
