package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// StageName labels this stage's metrics and logs.
const StageName = "aggregator"

// Topics the aggregator consumes: the pipeline's outcomes, and
// usage.accepted for the record store (usage_records).
var Topics = []string{schemas.TopicRated, schemas.TopicDuplicates, schemas.TopicUnrated, schemas.TopicAccepted, schemas.TopicStatus}

// Stage inserts batches of pipeline outcomes into ClickHouse.
type Stage struct {
	conn          driver.Conn
	metrics       *stream.Metrics
	insertSeconds *prometheus.HistogramVec
	now           func() time.Time
}

// NewStage returns the aggregator stage; it registers its ClickHouse insert
// latency histogram with reg.
func NewStage(conn driver.Conn, m *stream.Metrics, reg prometheus.Registerer) *Stage {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kakin_clickhouse_insert_seconds", Help: "Time to insert one batch into a ClickHouse table.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"table"})
	reg.MustRegister(h)
	return &Stage{conn: conn, metrics: m, insertSeconds: h, now: clock.Now}
}

type batchRows struct {
	rated      []schemas.RatedLine
	duplicates []schemas.Duplicate
	unrated    []schemas.Unrated
	records    []usagedb.AcceptedRecord
	statuses   []schemas.StatusChange
	skipped    int // usage.accepted messages that are not records (corrections, or unreadable: the rater parks those)
}

// HandleBatch sorts the batch by topic and inserts each table's rows in one
// insert. It returns nil only when every insert succeeded. The stage runner
// (stream.Runner) decodes each message and parks what it cannot read; the
// aggregator reads usage.unrated, so a parked message is not written there
// but kept here as an unrated row with its raw bytes, never dropped.
func (s *Stage) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	return stream.Runner[row]{Stage: StageName, Decode: decodeRow, Process: s.process,
		Metrics: s.metrics, Now: s.now}.HandleBatch(ctx, msgs)
}

// process inserts the batch's rows, one insert per table.
func (s *Stage) process(ctx context.Context, b *stream.Batch[row]) error {
	var rows batchRows
	for i := range b.Items {
		rows.add(&b.Items[i])
	}
	if err := s.insert(ctx, "rated_usage", len(rows.rated), func(b driver.Batch) error { return usagedb.AppendRated(b, rows.rated) }); err != nil {
		return err
	}
	if err := s.insert(ctx, "usage_duplicates", len(rows.duplicates), func(b driver.Batch) error { return usagedb.AppendDuplicates(b, rows.duplicates) }); err != nil {
		return err
	}
	if err := s.insert(ctx, "usage_unrated", len(rows.unrated), func(b driver.Batch) error { return usagedb.AppendUnrated(b, rows.unrated) }); err != nil {
		return err
	}
	if err := s.insert(ctx, "usage_records", len(rows.records), func(bt driver.Batch) error { return usagedb.AppendRecords(bt, rows.records, b.Now) }); err != nil {
		return err
	}
	if err := s.insert(ctx, "usage_status", len(rows.statuses), func(b driver.Batch) error { return usagedb.AppendStatuses(b, rows.statuses) }); err != nil {
		return err
	}
	b.Count("rated", len(rows.rated))
	b.Count("duplicate", len(rows.duplicates))
	b.Count("unrated", len(rows.unrated))
	b.Count("record", len(rows.records))
	b.Count("status", len(rows.statuses))
	b.Count("skipped", rows.skipped)
	return nil
}

// row is one message decoded into its table's row; exactly one field is
// set, or skip.
type row struct {
	rated   *schemas.RatedLine
	dup     *schemas.Duplicate
	unrated *schemas.Unrated
	record  *usagedb.AcceptedRecord
	status  *schemas.StatusChange
	skip    bool // a usage.accepted message that is not a record
}

// add appends an item's row; a parked item is an unrated row.
func (r *batchRows) add(it *stream.Item[row]) {
	v := &it.Value
	switch {
	case it.Parked != nil:
		r.unrated = append(r.unrated, *it.Parked)
	case v.rated != nil:
		r.rated = append(r.rated, *v.rated)
	case v.dup != nil:
		r.duplicates = append(r.duplicates, *v.dup)
	case v.unrated != nil:
		r.unrated = append(r.unrated, *v.unrated)
	case v.record != nil:
		r.records = append(r.records, *v.record)
	case v.status != nil:
		r.statuses = append(r.statuses, *v.status)
	default:
		r.skipped++
	}
}

// decodeRow decodes one message into its table's row; an error is the
// reason it is parked.
func decodeRow(m *stream.Message) (row, error) {
	r, err := readRow(m)
	if err != nil {
		return row{}, fmt.Errorf("aggregator could not read the record: %w", err)
	}
	return r, nil
}

func readRow(m *stream.Message) (row, error) {
	var err error
	switch m.Topic {
	case schemas.TopicRated:
		var l schemas.RatedLine
		if err = json.Unmarshal(m.Value, &l); err == nil {
			if err = complete(l.Event.Tenant, l.LineID, l.Event.ID, l.Currency, l.Period); err == nil && l.RatedAt.IsZero() {
				err = errors.New("rated line without rated_at")
			}
			if err == nil {
				return row{rated: &l}, nil
			}
		}
	case schemas.TopicDuplicates:
		var d schemas.Duplicate
		if err = json.Unmarshal(m.Value, &d); err == nil {
			if err = complete(d.Event.Tenant, d.Event.ID); err == nil {
				return row{dup: &d}, nil
			}
		}
	case schemas.TopicUnrated:
		var u schemas.Unrated
		if err = json.Unmarshal(m.Value, &u); err == nil {
			// A malformed record parked by an earlier stage has no tenant,
			// but always an id and a reason.
			if err = complete(u.Event.ID, u.ReasonCode); err == nil {
				return row{unrated: &u}, nil
			}
		}
	case schemas.TopicAccepted:
		// The rater prices these and parks what it cannot read; here only
		// the record itself is kept. Corrections and re-rate requests are
		// not records.
		var ev schemas.UsageEvent
		if schemas.HeaderKind(m.Headers) != "" || json.Unmarshal(m.Value, &ev) != nil || complete(ev.Tenant, ev.ID) != nil {
			return row{skip: true}, nil
		}
		return row{record: &usagedb.AcceptedRecord{Event: ev, Partition: m.Partition, Offset: m.Offset}}, nil
	case schemas.TopicStatus:
		var st schemas.StatusChange
		if err = json.Unmarshal(m.Value, &st); err == nil {
			if err = complete(st.Event.Tenant, st.Event.ID, st.Action, st.Status); err == nil && st.Generation == 0 {
				err = errors.New("status change with generation 0")
			}
			if err == nil {
				return row{status: &st}, nil
			}
		}
	default:
		err = fmt.Errorf("unexpected topic %q", m.Topic)
	}
	return row{}, err
}

// complete reports an error when a required field is empty: a record that
// decodes but lacks its keys is malformed, not data.
func complete(fields ...string) error {
	for _, f := range fields {
		if f == "" {
			return errors.New("record lacks a required field (tenant, id, line id, currency or period)")
		}
	}
	return nil
}

func (s *Stage) insert(ctx context.Context, table string, n int, fill func(driver.Batch) error) error {
	if n == 0 {
		return nil
	}
	start := time.Now()
	b, err := s.conn.PrepareBatch(ctx, usagedb.InsertInto(table))
	if err != nil {
		return stream.Fail("clickhouse", fmt.Errorf("prepare insert into %s: %w", table, err))
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	if err := b.Send(); err != nil {
		return stream.Fail("clickhouse", fmt.Errorf("insert into %s: %w", table, err))
	}
	s.insertSeconds.WithLabelValues(table).Observe(time.Since(start).Seconds())
	return nil
}
