package usage

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/aggregator"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/internal/usagetest"
	"github.com/prometheus/client_golang/prometheus"
)

// Every test migrates a ClickHouse database of its own on the server the
// package's tests share (testenv); in -short mode the tests skip themselves.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true}) }

// newDB migrates a fresh database for the test and returns a connection to
// it; the database is dropped when the test ends.
func newDB(t testing.TB) driver.Conn {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "usage")
	return conn
}

// newStage returns an aggregator stage on conn with metrics of its own.
func newStage(conn driver.Conn) *aggregator.Stage {
	return aggregator.NewStage(conn, stream.NewMetrics(prometheus.NewRegistry()), prometheus.NewRegistry())
}

// The message fixtures are shared with the other usage-table packages
// (internal/usagetest).
var (
	march       = usagetest.March
	ratedTime   = usagetest.RatedTime
	dec         = usagetest.Dec
	line        = usagetest.Line
	jsonValue   = usagetest.JSONValue
	ratedMsg    = usagetest.RatedMsg
	dupMsg      = usagetest.DupMsg
	unratedMsg  = usagetest.UnratedMsg
	duplicate   = usagetest.Duplicate
	unrated     = usagetest.Unrated
	record      = usagetest.Record
	acceptedMsg = usagetest.AcceptedMsg
	statusMsg   = usagetest.StatusMsg
)
