package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
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

var (
	march     = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	ratedTime = time.Date(2026, 3, 14, 10, 0, 5, 0, time.UTC)
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// line is a rated line of one event; its id is derived as the rater does.
func line(tenant, customer, period, eventID, element, qty, amount, currency string) schemas.RatedLine {
	return schemas.RatedLine{
		LineID: schemas.LineID(tenant, eventID, element),
		Event: schemas.UsageEvent{Tenant: tenant, ID: eventID, Customer: customer, Element: element,
			Quantity: dec(qty), Time: march, ReceivedAt: march.Add(time.Second)},
		Item: element, UnitPrice: dec("0.01"), Amount: dec(amount), Currency: currency, Period: period,
		RatedAt: ratedTime,
	}
}

func jsonValue(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ratedMsg(t testing.TB, p int, o int64, l schemas.RatedLine) kafka.Message {
	return kafka.Message{Topic: schemas.TopicRated, Partition: p, Offset: o, Value: jsonValue(t, &l), Time: l.Event.ReceivedAt}
}

func dupMsg(t testing.TB, p int, o int64, d schemas.Duplicate) kafka.Message {
	return kafka.Message{Topic: schemas.TopicDuplicates, Partition: p, Offset: o, Value: jsonValue(t, &d), Time: d.Event.ReceivedAt}
}

func unratedMsg(t testing.TB, p int, o int64, u schemas.Unrated) kafka.Message {
	return kafka.Message{Topic: schemas.TopicUnrated, Partition: p, Offset: o, Value: jsonValue(t, &u), Time: u.Event.ReceivedAt}
}

func duplicate(tenant, id string, rawP int, rawO int64, firstP int, firstO int64, differs bool) schemas.Duplicate {
	return schemas.Duplicate{
		Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "cust-1", Element: "api_calls",
			Quantity: dec("1"), Time: march, ReceivedAt: march.Add(time.Minute)},
		Self:           schemas.Claim{Partition: rawP, Offset: rawO, PayloadHash: 2, ReceivedAt: march.Add(time.Minute)},
		First:          schemas.Claim{Partition: firstP, Offset: firstO, PayloadHash: 1, ReceivedAt: march.Add(time.Second)},
		PayloadDiffers: differs,
		DetectedAt:     ratedTime,
	}
}

func unrated(tenant, id, reason string) schemas.Unrated {
	return schemas.Unrated{
		Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "cust-x", Element: "api_calls",
			Quantity: dec("2"), Time: march, ReceivedAt: march.Add(time.Second)},
		ReasonCode: reason, Reason: "no such thing", Stage: "rater", At: ratedTime,
	}
}

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
