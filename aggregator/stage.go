package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

// Topics the aggregator consumes: the pipeline's outcomes. The record store
// (usage_records) is filled from them too: the rater's first output for each
// usage record (a rated line, or the record parked unrated) carries the record
// (schemas.RecordOrigin), so the aggregator reads one message per record and
// not usage.accepted as well.
var Topics = []string{schemas.TopicRated, schemas.TopicDuplicates, schemas.TopicUnrated, schemas.TopicStatus}

// BatchFactor is how many times --batch-size the aggregator takes per
// consumer batch (50,000 messages at the default 5,000): ClickHouse wants
// inserts of 10-100K rows (an insert of ~2,500 rows costs the server 5-6x
// the CPU per row of one of ~19,000, docs/STACK.md), and a batch is spread
// over five tables, most of it one rated line and one record row per
// event. A batch is still committed only after every insert of it
// succeeded; the fill wait (--flush-interval) still bounds how long a
// batch waits, so under light load inserts stay small and latency low, and
// under load they grow to ~16-20K rows per table. A smaller --batch-size
// still makes smaller aggregator batches (the crash tests rely on it).
const BatchFactor = 10

// ConsumerBatch is the aggregator's consumer batch size for the configured
// one (--batch-size).
func ConsumerBatch(configured int) int { return configured * BatchFactor }

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
	// Every table's rows are appended first, and only when all of them
	// passed the checks (a value ClickHouse would corrupt refuses the whole
	// batch, nothing stored) are the inserts sent, at once: they are
	// independent and ClickHouse works on each in its own thread. The batch
	// succeeds only when every insert did; a failed batch is handed again
	// whole, and the rows an insert stored already are replaced by their
	// copies (every table is a ReplacingMergeTree keyed by deterministic ids).
	inserts := []struct {
		table string
		n     int
		fill  func(driver.Batch) error
	}{
		{"rated_usage", len(rows.rated), func(bt driver.Batch) error { return usagedb.AppendRated(bt, rows.rated) }},
		{"usage_duplicates", len(rows.duplicates), func(bt driver.Batch) error { return usagedb.AppendDuplicates(bt, rows.duplicates) }},
		{"usage_unrated", len(rows.unrated), func(bt driver.Batch) error { return usagedb.AppendUnrated(bt, rows.unrated) }},
		{"usage_records", len(rows.records), func(bt driver.Batch) error { return usagedb.AppendRecords(bt, rows.records, b.Now) }},
		{"usage_status", len(rows.statuses), func(bt driver.Batch) error { return usagedb.AppendStatuses(bt, rows.statuses) }},
	}
	var ready []*prepared
	abort := func() {
		for _, p := range ready {
			_ = p.batch.Abort()
		}
	}
	for _, in := range inserts {
		if in.n == 0 {
			continue
		}
		p, err := s.prepare(ctx, in.table, in.fill)
		if err != nil {
			abort()
			return err
		}
		ready = append(ready, p)
	}
	errs := make([]error, len(ready))
	var wg sync.WaitGroup
	for i, p := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.send(p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	b.Count("rated", len(rows.rated))
	b.Count("duplicate", len(rows.duplicates))
	b.Count("unrated", len(rows.unrated))
	b.Count("record", len(rows.records))
	b.Count("status", len(rows.statuses))
	return nil
}

// row is one message decoded into its table's rows: at most one of rated,
// dup, unrated and status, and record when the message carries an accepted
// record; none for a usage.accepted message that is not a record.
type row struct {
	rated   *schemas.RatedLine
	dup     *schemas.Duplicate
	unrated *schemas.Unrated
	record  *usagedb.AcceptedRecord
	status  *schemas.StatusChange
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
	case v.status != nil:
		r.statuses = append(r.statuses, *v.status)
	}
	if it.Parked == nil && v.record != nil {
		r.records = append(r.records, *v.record)
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
		if err = schemas.UnmarshalRatedLine(m.Value, &l); err == nil {
			if err = complete(l.Event.Tenant, l.LineID, l.Event.ID, l.Currency, l.Period); err == nil && l.RatedAt.IsZero() {
				err = errors.New("rated line without rated_at")
			}
			if err == nil {
				return row{rated: &l, record: acceptedRecord(l.Record, &l.Event)}, nil
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
		if err = schemas.UnmarshalUnrated(m.Value, &u); err == nil {
			// A malformed record parked by an earlier stage has no tenant,
			// but always an id and a reason.
			if err = complete(u.Event.ID, u.ReasonCode); err == nil {
				if u.Record != nil {
					err = complete(u.Event.Tenant)
				}
			}
			if err == nil {
				return row{unrated: &u, record: acceptedRecord(u.Record, &u.Event)}, nil
			}
		}
	case schemas.TopicAccepted:
		// Not among Topics any more: records come with the rater's
		// outputs. A usage.accepted message handed here all the same
		// (records the rater priced before its outputs carried them, read
		// during an upgrade) is stored as before; corrections, re-rate
		// requests and unreadable messages are not records (the rater
		// parks those).
		var ev schemas.UsageEvent
		if schemas.HeaderKind(m.Headers) != "" || schemas.UnmarshalEvent(m.Value, &ev) != nil || complete(ev.Tenant, ev.ID) != nil {
			return row{}, nil
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

// acceptedRecord is the usage_records row an output carries, if it carries
// one (origin set).
func acceptedRecord(origin *schemas.RecordOrigin, ev *schemas.UsageEvent) *usagedb.AcceptedRecord {
	if origin == nil {
		return nil
	}
	return &usagedb.AcceptedRecord{Event: origin.Record(ev), Partition: origin.Partition, Offset: origin.Offset}
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

// prepared is one table's insert, filled and not yet sent.
type prepared struct {
	table string
	batch driver.Batch
	start time.Time
}

// prepare starts an insert into table and appends its rows; an error from
// fill (a value ClickHouse would store wrongly) aborts it.
func (s *Stage) prepare(ctx context.Context, table string, fill func(driver.Batch) error) (*prepared, error) {
	start := time.Now()
	b, err := s.conn.PrepareBatch(ctx, usagedb.InsertInto(table))
	if err != nil {
		return nil, stream.Fail("clickhouse", fmt.Errorf("prepare insert into %s: %w", table, err))
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return nil, fmt.Errorf("insert into %s: %w", table, err)
	}
	return &prepared{table: table, batch: b, start: start}, nil
}

// send sends a prepared insert and returns once ClickHouse stored it.
func (s *Stage) send(p *prepared) error {
	if err := p.batch.Send(); err != nil {
		return stream.Fail("clickhouse", fmt.Errorf("insert into %s: %w", p.table, err))
	}
	s.insertSeconds.WithLabelValues(p.table).Observe(time.Since(p.start).Seconds())
	return nil
}
