package usagedb

import (
	"context"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Record statuses as searches show them. Every record Kakin received (and did
// not reject at ingest) has exactly one:
//
//   - invalid:   invalidated, and not cancelled since (latest generation odd);
//   - rated:     valid, and priced (it has a line in rated_usage);
//   - unrated:   valid, and parked because it could not be priced;
//   - pending:   valid, accepted, and not yet priced or parked (in flight);
//   - duplicate: a repeat of an earlier record's id; never counted.
//
// invalid wins over rated and unrated; rated wins over unrated (a record that
// was re-rated after being parked).
const (
	StatusRated     = "rated"
	StatusUnrated   = "unrated"
	StatusPending   = "pending"
	StatusInvalid   = "invalid"
	StatusDuplicate = "duplicate"
)

// Records searches and reads the usage records Kakin accepted (usage_records,
// one per id) together with the duplicates of them (usage_duplicates), each
// with its status.
type Records struct {
	conn driver.Conn
}

// NewRecords returns the usage record search.
func NewRecords(conn driver.Conn) *Records {
	return &Records{conn: conn}
}

// RecordFilter narrows a record search; empty fields do not filter.
type RecordFilter struct {
	UsageFilter                  // customer, element, received time [From, To)
	ID, Contract       string    // exact
	EventFrom, EventTo time.Time // when the usage happened, [EventFrom, EventTo)
	Status             string    // one of the Status constants
}

// Empty reports whether f filters nothing.
func (f RecordFilter) Empty() bool {
	return f.Customer == "" && f.Element == "" && f.From.IsZero() && f.To.IsZero() && f.ID == "" &&
		f.Contract == "" && f.EventFrom.IsZero() && f.EventTo.IsZero() && f.Status == ""
}

// UsageRecord is one record in a search answer.
type UsageRecord struct {
	ID         string            `json:"id"`
	Customer   string            `json:"customer"`
	Element    string            `json:"element"`
	Contract   string            `json:"contract,omitempty"`
	Quantity   string            `json:"quantity"`
	Time       time.Time         `json:"time"`
	ReceivedAt time.Time         `json:"received_at"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Import names the upload the record came from (absent for records sent
	// to the API, and for duplicates).
	Import *schemas.ImportSource `json:"import,omitempty"`
	Status string                `json:"status"`
	// Generation counts the record's status changes (0: never invalidated).
	Generation uint64 `json:"generation"`
}

// baseConditions are the filters both usage_records and usage_duplicates
// answer (they share the column names).
func (f RecordFilter) baseConditions(tenantID string) *conditions {
	c := usageConditions(tenantID, f.UsageFilter)
	if f.ID != "" {
		c.add("event_id = ?", f.ID)
	}
	if f.Contract != "" {
		c.add("contract = ?", f.Contract)
	}
	if !f.EventFrom.IsZero() {
		c.add("event_time >= ?", f.EventFrom)
	}
	if !f.EventTo.IsZero() {
		c.add("event_time < ?", f.EventTo)
	}
	return c
}

// recordConditions filters usage_records, status included. Statuses are sets
// of event ids from the other tables, scoped to the tenant (and customer and
// event time when the filter names them, which keeps the sets small).
func (f RecordFilter) recordConditions(tenantID string) *conditions {
	c := f.baseConditions(tenantID)
	scope := func(table string, timed bool) (string, []any) {
		sql, args := "SELECT event_id FROM "+table+" WHERE tenant = ?", []any{tenantID}
		if f.Customer != "" {
			sql, args = sql+" AND customer = ?", append(args, f.Customer)
		}
		if f.ID != "" {
			sql, args = sql+" AND event_id = ?", append(args, f.ID)
		}
		if timed && !f.EventFrom.IsZero() {
			sql, args = sql+" AND event_time >= ?", append(args, f.EventFrom)
		}
		if timed && !f.EventTo.IsZero() {
			sql, args = sql+" AND event_time < ?", append(args, f.EventTo)
		}
		return sql, args
	}
	in := func(not bool, table string, timed bool, suffix string) {
		sql, args := scope(table, timed)
		op := "IN"
		if not {
			op = "NOT IN"
		}
		c.add("event_id "+op+" ("+sql+suffix+")", args...)
	}
	const invalidSuffix = " GROUP BY event_id HAVING max(generation) % 2 = 1"
	switch f.Status {
	case StatusInvalid:
		in(false, "usage_status", false, invalidSuffix)
	case StatusRated:
		in(true, "usage_status", false, invalidSuffix)
		in(false, "rated_usage", true, "")
	case StatusUnrated:
		in(true, "usage_status", false, invalidSuffix)
		in(true, "rated_usage", true, "")
		in(false, "usage_unrated", true, "")
	case StatusPending:
		in(true, "usage_status", false, invalidSuffix)
		in(true, "rated_usage", true, "")
		in(true, "usage_unrated", true, "")
	}
	return c
}

// RecordKey is the keyset cursor of a record search: records sort by id, then the first record
// (kind 0) before its duplicates (kind 1), which sort by their position in
// usage.raw.
type RecordKey struct {
	ID        string
	Kind      uint8
	Partition int32
	Offset    int64
}

func (k RecordKey) less(o RecordKey) bool {
	if k.ID != o.ID {
		return k.ID < o.ID
	}
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Partition != o.Partition {
		return k.Partition < o.Partition
	}
	return k.Offset < o.Offset
}

// recordColumns are read from usage_records in this order (see scanEvent).
const recordColumns = `event_id, customer, element, contract, quantity, event_time, event_nanos, received_at, received_nanos,
	attribute_keys, attribute_values, accepted_partition, accepted_offset, import_file, import_job`

// hit is one row of a search with its sorting key.
type hit struct {
	ev  schemas.UsageEvent
	key RecordKey
}

// Search returns up to size records (and duplicates) after the key after
// (nil: from the start) in id order, and the key to continue after when more
// follow (nil on the last page). Records and duplicates are read separately
// (each at most size+1 rows) and merged.
func (r *Records) Search(ctx context.Context, tenantID string, f RecordFilter, after *RecordKey, size int) ([]UsageRecord, *RecordKey, error) {
	var found []hit
	if f.Status != StatusDuplicate {
		c := f.recordConditions(tenantID)
		if after != nil {
			c.add("event_id > ?", after.ID) // a record sorts before its duplicates, and is the only record of its id
		}
		recs, err := r.records(ctx, tenantID, f, c, size+1)
		if err != nil {
			return nil, nil, err
		}
		found = append(found, recs...)
	}
	if f.Status == "" || f.Status == StatusDuplicate {
		dups, err := r.duplicates(ctx, f.baseConditions(tenantID), after, size+1)
		if err != nil {
			return nil, nil, err
		}
		found = append(found, dups...)
	}
	slices.SortFunc(found, func(a, b hit) int {
		if a.key.less(b.key) {
			return -1
		}
		if b.key.less(a.key) {
			return 1
		}
		return 0
	})
	found, more := firstPage(found, size)
	var ids []string
	for _, h := range found {
		if h.key.Kind == 0 {
			ids = append(ids, h.ev.ID)
		}
	}
	states, err := r.States(ctx, tenantID, ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]UsageRecord, 0, len(found))
	for _, h := range found {
		rec := recordView(&h.ev)
		if h.key.Kind == 1 {
			rec.Status = StatusDuplicate
		} else {
			st := states[h.ev.ID]
			rec.Status, rec.Generation = st.Status(), st.Generation
		}
		out = append(out, rec)
	}
	var next *RecordKey
	if more {
		next = &found[len(found)-1].key
	}
	return out, next, nil
}

// records reads up to limit records matching c, in id order, in two steps.
// FINAL over every column of a large tenant costs a merge of all of it (about
// 0.5 s per million records on this machine, measured), so the ids come first
// from the table without FINAL (one column; a redelivered record is an
// identical row, dropped by LIMIT 1 BY), then the current version of just
// those records, by the sorting key, with FINAL. Status conditions are sets of
// ids and need not be applied again; the other filters are, in case a newer
// version of a record no longer matches.
func (r *Records) records(ctx context.Context, tenantID string, f RecordFilter, c *conditions, limit int) ([]hit, error) {
	rows, err := r.conn.Query(ctx, "SELECT event_id FROM usage_records WHERE "+c.where()+
		" ORDER BY event_id LIMIT 1 BY event_id LIMIT ?", append(c.args, limit)...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []hit
	for start := 0; start < len(ids); start += stateChunk {
		chunk := ids[start:min(start+stateChunk, len(ids))]
		c := f.baseConditions(tenantID)
		c.add("event_id IN ?", idSet(chunk))
		rows, err := r.conn.Query(ctx, "SELECT "+recordColumns+" FROM usage_records FINAL WHERE "+c.where()+" ORDER BY event_id", c.args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			h := hit{ev: schemas.UsageEvent{Tenant: tenantID}}
			var pos Position
			if err := scanEvent(rows, &h.ev, &pos); err != nil {
				rows.Close()
				return nil, err
			}
			h.key = RecordKey{ID: h.ev.ID, Partition: pos.Partition, Offset: pos.Offset}
			out = append(out, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// duplicates reads up to limit duplicates matching c after the key after.
func (r *Records) duplicates(ctx context.Context, c *conditions, after *RecordKey, limit int) ([]hit, error) {
	if after != nil {
		if after.Kind == 0 {
			c.add("event_id >= ?", after.ID) // the duplicates of the last record come after it
		} else {
			c.add("(event_id > ? OR (event_id = ? AND (raw_partition > ? OR (raw_partition = ? AND raw_offset > ?))))",
				after.ID, after.ID, after.Partition, after.Partition, after.Offset)
		}
	}
	rows, err := r.conn.Query(ctx, `SELECT event_id, customer, element, contract, quantity,
			event_time, toUInt32(0), received_at, toUInt32(0), emptyArrayString(), emptyArrayString(), raw_partition, raw_offset, '', ''
		FROM usage_duplicates FINAL WHERE `+c.where()+` ORDER BY event_id, raw_partition, raw_offset LIMIT ?`, append(c.args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hit
	for rows.Next() {
		var h hit
		var pos Position
		if err := scanEvent(rows, &h.ev, &pos); err != nil {
			return nil, err
		}
		h.key = RecordKey{ID: h.ev.ID, Kind: 1, Partition: pos.Partition, Offset: pos.Offset}
		out = append(out, h)
	}
	return out, rows.Err()
}

func idSet(ids []string) clickhouse.GroupSet {
	set := make([]any, len(ids))
	for i, id := range ids {
		set[i] = id
	}
	return clickhouse.GroupSet{Value: set}
}

// Count returns how many records (and duplicates) match the filter.
func (r *Records) Count(ctx context.Context, tenantID string, f RecordFilter) (uint64, error) {
	var n uint64
	if f.Status != StatusDuplicate {
		c, err := countRows(ctx, r.conn, "usage_records", f.recordConditions(tenantID))
		if err != nil {
			return 0, err
		}
		n += c
	}
	if f.Status == "" || f.Status == StatusDuplicate {
		c, err := countRows(ctx, r.conn, "usage_duplicates", f.baseConditions(tenantID))
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

// scanEvent reads a row of recordColumns into a usage event and its log
// position.
func scanEvent(rows driver.Rows, ev *schemas.UsageEvent, pos *Position) error {
	var q decimal.Decimal
	var evNanos, recvNanos uint32
	var keys, values []string
	var file, job string
	dest := []any{&ev.ID, &ev.Customer, &ev.Element, &ev.Contract, &q, &ev.Time, &evNanos, &ev.ReceivedAt, &recvNanos,
		&keys, &values, &pos.Partition, &pos.Offset, &file, &job}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	if job != "" {
		ev.Import = &schemas.ImportSource{File: file, Job: job}
	}
	ev.Quantity = q
	ev.Time = time.Unix(ev.Time.Unix(), int64(evNanos)).UTC()
	ev.ReceivedAt = time.Unix(ev.ReceivedAt.Unix(), int64(recvNanos)).UTC()
	if len(keys) > 0 && len(keys) == len(values) {
		ev.Attributes = make(map[string]string, len(keys))
		for i, k := range keys {
			ev.Attributes[k] = values[i]
		}
	}
	return nil
}

func recordView(ev *schemas.UsageEvent) UsageRecord {
	return UsageRecord{ID: ev.ID, Customer: ev.Customer, Element: ev.Element, Contract: ev.Contract,
		Quantity: ev.Quantity.String(), Time: ev.Time, ReceivedAt: ev.ReceivedAt, Attributes: ev.Attributes, Import: ev.Import}
}

// RecordState is what decides a stored record's status.
type RecordState struct {
	Generation uint64   // latest status generation; odd means invalid
	Rated      bool     // it has lines in rated_usage
	Unrated    bool     // it was parked in usage_unrated
	Periods    []string // billing periods of its lines
}

// Status names the state as searches show it.
func (s RecordState) Status() string {
	switch {
	case s.Generation%2 == 1:
		return StatusInvalid
	case s.Rated:
		return StatusRated
	case s.Unrated:
		return StatusUnrated
	default:
		return StatusPending
	}
}

// stateChunk bounds the ids in one IN list (the query text stays far below
// ClickHouse's max_query_size).
const stateChunk = 1000

// States returns the state of each of the tenant's records in ids (records
// with no row anywhere are absent: pending, generation 0).
func (r *Records) States(ctx context.Context, tenantID string, ids []string) (map[string]RecordState, error) {
	out := make(map[string]RecordState, len(ids))
	for start := 0; start < len(ids); start += stateChunk {
		chunk := ids[start:min(start+stateChunk, len(ids))]
		if err := r.states(ctx, tenantID, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *Records) states(ctx context.Context, tenantID string, ids []string, out map[string]RecordState) error {
	in := idSet(ids)
	type source struct {
		query string
		apply func(rows driver.Rows) error
	}
	for _, src := range []source{
		{"SELECT event_id, max(generation) FROM usage_status WHERE tenant = ? AND event_id IN ? GROUP BY event_id",
			func(rows driver.Rows) error {
				var id string
				var g uint64
				if err := rows.Scan(&id, &g); err != nil {
					return err
				}
				st := out[id]
				st.Generation = g
				out[id] = st
				return nil
			}},
		{"SELECT event_id, groupUniqArray(period) FROM rated_usage WHERE tenant = ? AND event_id IN ? GROUP BY event_id",
			func(rows driver.Rows) error {
				var id string
				var periods []string
				if err := rows.Scan(&id, &periods); err != nil {
					return err
				}
				st := out[id]
				st.Rated, st.Periods = true, periods
				out[id] = st
				return nil
			}},
		{"SELECT DISTINCT event_id FROM usage_unrated WHERE tenant = ? AND event_id IN ?",
			func(rows driver.Rows) error {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				st := out[id]
				st.Unrated = true
				out[id] = st
				return nil
			}},
	} {
		rows, err := r.conn.Query(ctx, src.query, tenantID, in)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := src.apply(rows); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Events returns up to limit of the tenant's stored records matching f, as
// the events they were accepted as, in id order. f.Status is ignored.
func (r *Records) Events(ctx context.Context, tenantID string, f RecordFilter, limit int) ([]schemas.UsageEvent, error) {
	f.Status = ""
	hits, err := r.records(ctx, tenantID, f, f.recordConditions(tenantID), limit)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.UsageEvent, len(hits))
	for i := range hits {
		out[i] = hits[i].ev
	}
	return out, nil
}

// CountEvents returns how many stored records match f (duplicates excluded).
func (r *Records) CountEvents(ctx context.Context, tenantID string, f RecordFilter) (uint64, error) {
	f.Status = ""
	return countRows(ctx, r.conn, "usage_records", f.recordConditions(tenantID))
}
