package usage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/aggregator"
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
	conn, _ := testenv.ClickHouse(t, "usage")
	return conn
}

// newStage returns an aggregator stage on conn with metrics of its own.
func newStage(conn driver.Conn) *aggregator.Stage {
	return aggregator.NewStage(conn, stream.NewMetrics(prometheus.NewRegistry()), prometheus.NewRegistry())
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

// record is a usage event as it arrives on usage.accepted.
func record(tenant, id, customer, element, contract string, minutes int) schemas.UsageEvent {
	return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Element: element, Contract: contract,
		Quantity: dec("1.5"), Time: march.Add(time.Duration(minutes)*time.Minute + 987654321),
		ReceivedAt: march.Add(time.Hour + time.Duration(minutes)*time.Minute + 5), Attributes: map[string]string{"region": "jp", "a": "1"}}
}

func acceptedMsg(t testing.TB, p int, o int64, ev schemas.UsageEvent) kafka.Message {
	return kafka.Message{Topic: schemas.TopicAccepted, Partition: p, Offset: o, Value: jsonValue(t, &ev), Time: ev.ReceivedAt}
}

func statusMsg(t testing.TB, p int, o int64, ev schemas.UsageEvent, gen uint64) kafka.Message {
	st := schemas.StatusChange{Event: ev, Generation: gen, Action: schemas.ActionForGeneration(gen),
		Status: schemas.StatusForGeneration(gen), Actor: "t", RequestedAt: ratedTime, AppliedAt: ratedTime, Priced: true}
	return kafka.Message{Topic: schemas.TopicStatus, Partition: p, Offset: o, Value: jsonValue(t, &st), Time: ratedTime}
}
