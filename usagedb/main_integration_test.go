package usagedb

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/internal/usagetest"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
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
	duplicate   = usagetest.Duplicate
	record      = usagetest.Record
	acceptedMsg = usagetest.AcceptedMsg
	statusMsg   = usagetest.StatusMsg
)
