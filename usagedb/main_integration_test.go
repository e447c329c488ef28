package usagedb

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
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
	conn, _ := testenv.ClickHouse(t, "udb")
	return conn
}

// stage stands in for the aggregator stage, which imports this package: it
// stores a batch of outcome messages (all readable) through the same insert
// statements and Append functions, one insert per table.
type stage struct{ conn driver.Conn }

func newStage(conn driver.Conn) *stage { return &stage{conn: conn} }

func (s *stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	var (
		rated      []schemas.RatedLine
		duplicates []schemas.Duplicate
		unrated    []schemas.Unrated
		records    []AcceptedRecord
		statuses   []schemas.StatusChange
	)
	for _, m := range msgs {
		var err error
		switch m.Topic {
		case schemas.TopicRated:
			var l schemas.RatedLine
			err = json.Unmarshal(m.Value, &l)
			rated = append(rated, l)
		case schemas.TopicDuplicates:
			var d schemas.Duplicate
			err = json.Unmarshal(m.Value, &d)
			duplicates = append(duplicates, d)
		case schemas.TopicUnrated:
			var u schemas.Unrated
			err = json.Unmarshal(m.Value, &u)
			unrated = append(unrated, u)
		case schemas.TopicAccepted:
			var ev schemas.UsageEvent
			err = json.Unmarshal(m.Value, &ev)
			records = append(records, AcceptedRecord{Event: ev, Partition: m.Partition, Offset: m.Offset})
		case schemas.TopicStatus:
			var st schemas.StatusChange
			err = json.Unmarshal(m.Value, &st)
			statuses = append(statuses, st)
		default:
			err = fmt.Errorf("unexpected topic %q", m.Topic)
		}
		if err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	for _, t := range []struct {
		table string
		n     int
		fill  func(driver.Batch) error
	}{
		{"rated_usage", len(rated), func(b driver.Batch) error { return AppendRated(b, rated) }},
		{"usage_duplicates", len(duplicates), func(b driver.Batch) error { return AppendDuplicates(b, duplicates) }},
		{"usage_unrated", len(unrated), func(b driver.Batch) error { return AppendUnrated(b, unrated) }},
		{"usage_records", len(records), func(b driver.Batch) error { return AppendRecords(b, records, now) }},
		{"usage_status", len(statuses), func(b driver.Batch) error { return AppendStatuses(b, statuses) }},
	} {
		if t.n == 0 {
			continue
		}
		b, err := s.conn.PrepareBatch(ctx, InsertInto(t.table))
		if err != nil {
			return err
		}
		if err := t.fill(b); err != nil {
			_ = b.Abort()
			return err
		}
		if err := b.Send(); err != nil {
			return err
		}
	}
	return nil
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
