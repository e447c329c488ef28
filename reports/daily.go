package reports

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/shopspring/decimal"
)

// DB reads and writes the report tables: usage_daily, report_deletions, and
// reads usage_records and usage_status.
type DB struct {
	conn driver.Conn
	// InsertBatch is the rows per usage_daily insert (default 50,000).
	InsertBatch int
}

// NewDB returns the report tables on conn (migrated with 0011).
func NewDB(conn driver.Conn) *DB { return &DB{conn: conn, InsertBatch: 50_000} }

// attr is the SQL of a record attribute's value ("" when absent).
func attr(name string) string {
	return "attribute_values[indexOf(attribute_keys, '" + name + "')]"
}

// stateKey is who a record sets the level of.
type stateKey struct{ customer, contract, element, user string }

// place is where the subscriber is while a level holds: it goes with the
// record that set it.
type place struct{ subscriber, workspace, location string }

type change struct {
	place
	pricing.LevelChange
}

// DailyRow is one row of usage_daily.
type DailyRow struct {
	Day                               catalog.Date
	Customer, Contract, Element, User string
	Subscriber, Workspace, Location   string
	Quantity                          decimal.Decimal
	DaySeconds                        uint32
}

// recordsQuery selects the records that set levels during [start, end):
// the last valid record of each subscriber before start (the level held at
// start), and every valid record within, ordered by subscriber and time.
// A record is valid unless its latest status generation is odd
// (invalidated). usage_records is read with FINAL: a redelivered record is
// one row.
func recordsQuery() string {
	cols := "customer, contract, element, " + attr(AttrUser) + " AS u_user, " + attr(AttrSubscriber) + " AS u_subscriber, " +
		attr(AttrWorkspace) + " AS u_workspace, " + attr(AttrLocation) + " AS u_location, quantity, event_time, event_nanos, event_id"
	invalid := "event_id NOT IN (SELECT event_id FROM usage_status FINAL WHERE tenant = ? GROUP BY event_id HAVING max(generation) % 2 = 1)"
	before := "SELECT " + cols + " FROM usage_records FINAL WHERE tenant = ? AND event_time < ? AND " + invalid +
		" ORDER BY customer, contract, element, u_user, event_time DESC, event_nanos DESC, event_id DESC" +
		" LIMIT 1 BY customer, contract, element, u_user"
	within := "SELECT " + cols + " FROM usage_records FINAL WHERE tenant = ? AND event_time >= ? AND event_time < ? AND " + invalid
	return "SELECT * FROM (" + before + " UNION ALL " + within + ") ORDER BY customer, contract, element, u_user, event_time, event_nanos, event_id"
}

// Version returns the version of a computation started at t: later
// computations replace earlier ones.
func Version(t time.Time) uint64 { return uint64(t.UnixNano()) }

// ComputeDays computes the days first..last (civil days in loc) of the
// tenant's usage into usage_daily with version, and writes a zero row for
// every key of those days an earlier computation stored and this one did not
// produce (a record invalidated since, a subscriber moved): afterwards,
// usage_daily FINAL for those days is exactly what usage_records says.
// Running it again (a restarted job) writes the same keys again. It returns
// the number of rows written.
func (d *DB) ComputeDays(ctx context.Context, tenant string, first, last catalog.Date, loc *time.Location, version uint64) (int, error) {
	start, end := first.In(loc), last.AddDays(1).In(loc)
	rows, err := d.conn.Query(ctx, recordsQuery(), tenant, start.UTC(), tenant, tenant, start.UTC(), end.UTC(), tenant)
	if err != nil {
		return 0, fmt.Errorf("reports: read usage records: %w", err)
	}
	defer rows.Close()
	w := newDailyWriter(ctx, d, tenant, loc.String(), version)
	finished := false
	defer func() {
		if !finished {
			_ = w.finish(ctx)
		}
	}()
	var (
		cur     stateKey
		changes []change
		have    bool
	)
	flush := func() error {
		if !have {
			return nil
		}
		out, err := dayRows(cur, changes, first, last, loc)
		if err != nil {
			return err
		}
		return w.add(ctx, out)
	}
	for rows.Next() {
		var (
			k       stateKey
			p       place
			q       decimal.Decimal
			at      time.Time
			nanos   uint32
			eventID string
		)
		if err := rows.Scan(&k.customer, &k.contract, &k.element, &k.user, &p.subscriber, &p.workspace, &p.location,
			&q, &at, &nanos, &eventID); err != nil {
			return w.n, fmt.Errorf("reports: scan usage record: %w", err)
		}
		if !have || k != cur {
			if err := flush(); err != nil {
				return w.n, err
			}
			cur, changes, have = k, changes[:0], true
		}
		changes = append(changes, change{place: p, LevelChange: pricing.LevelChange{At: at.Add(time.Duration(nanos)), Level: q}})
	}
	if err := rows.Err(); err != nil {
		return w.n, fmt.Errorf("reports: read usage records: %w", err)
	}
	if err := flush(); err != nil {
		return w.n, err
	}
	finished = true
	if err := w.finish(ctx); err != nil {
		return w.n, err
	}
	// Zero what an earlier computation stored and this one did not write
	// (only when an earlier one left rows: the check reads one column
	// without FINAL). Which keys this one wrote is told by two independent
	// 64-bit hashes of the key (a set of 1 M pairs), not by a FINAL read of
	// every row (four times slower on 1 M rows); several old rows of one
	// stale key give identical zero rows, which collapse.
	var older uint64
	if err := d.conn.QueryRow(ctx, "SELECT count() FROM usage_daily WHERE tenant = ? AND time_zone = ? AND day >= toDate(?) AND day <= toDate(?) AND version < ?",
		tenant, loc.String(), first.String(), last.String(), version).Scan(&older); err != nil {
		return w.n, fmt.Errorf("reports: look for earlier daily rows: %w", err)
	}
	if older == 0 {
		return w.n, nil
	}
	const (
		key = "cityHash64(day, customer, contract, element, user, subscriber, workspace, location), " +
			"cityHash64('kakin usage_daily', location, workspace, subscriber, user, element, contract, customer, day)"
		rangeOf = "tenant = ? AND time_zone = ? AND day >= toDate(?) AND day <= toDate(?)"
	)
	err = d.conn.Exec(ctx, "INSERT INTO usage_daily ("+dailyColumns+") SELECT tenant, time_zone, day, customer, contract, element, "+
		"user, subscriber, workspace, location, toDecimal128(0, 9), day_seconds, now(), ? FROM usage_daily "+
		"WHERE "+rangeOf+" AND version < ? AND quantity != toDecimal128(0, 9) AND ("+key+") NOT IN "+
		"(SELECT "+key+" FROM usage_daily WHERE "+rangeOf+" AND version = ?)",
		version, tenant, loc.String(), first.String(), last.String(), version,
		tenant, loc.String(), first.String(), last.String(), version)
	if err != nil {
		return w.n, fmt.Errorf("reports: zero stale daily rows: %w", err)
	}
	return w.n, nil
}

// dateTime is the midnight UTC of d (how a Date column is bound).
func dateTime(d catalog.Date) time.Time { return d.In(time.UTC) }

// dayRows turns one subscriber's level changes into its non-zero daily rows:
// for each place the subscriber was in, the day fractions of the levels set
// by the records of that place (another place's record ends them).
func dayRows(k stateKey, changes []change, first, last catalog.Date, loc *time.Location) ([]DailyRow, error) {
	places := []place{changes[0].place}
	for _, c := range changes[1:] {
		found := false
		for _, p := range places {
			if p == c.place {
				found = true
				break
			}
		}
		if !found {
			places = append(places, c.place)
		}
	}
	var out []DailyRow
	levels := make([]pricing.LevelChange, len(changes))
	for _, p := range places {
		for i, c := range changes {
			levels[i] = c.LevelChange
			if c.place != p {
				levels[i].Level = decimal.Zero
			}
		}
		days, err := pricing.DayQuantities(levels, first, last, loc)
		if err != nil {
			return nil, fmt.Errorf("reports: customer %s element %s user %q: %w", k.customer, k.element, k.user, err)
		}
		for _, dq := range days {
			if dq.Quantity.IsZero() {
				continue
			}
			out = append(out, DailyRow{Day: dq.Day, Customer: k.customer, Contract: k.contract, Element: k.element, User: k.user,
				Subscriber: p.subscriber, Workspace: p.workspace, Location: p.location, Quantity: dq.Quantity, DaySeconds: uint32(dq.DaySeconds)})
		}
	}
	return out, nil
}

const dailyColumns = "tenant, time_zone, day, customer, contract, element, user, subscriber, workspace, location, quantity, day_seconds, computed_at, version"

// dailyCols is one insert's worth of usage_daily rows, column by column.
type dailyCols struct {
	day                               []time.Time
	customer, contract, element, user []string
	subscriber, workspace, location   []string
	quantity                          []decimal.Decimal
	daySeconds                        []uint32
}

// dailyWriter inserts usage_daily rows in batches, column-wise, in a
// goroutine of its own: the next batch is computed while one is inserted
// (at most one waits, so memory stays at about two batches).
type dailyWriter struct {
	d          *DB
	tenant, tz string
	version    uint64
	computedAt time.Time
	n          int // rows handed to the inserter

	cur     *dailyCols
	batches chan *dailyCols
	done    chan error
	failed  atomic.Bool
}

func newDailyWriter(ctx context.Context, d *DB, tenant, tz string, version uint64) *dailyWriter {
	w := &dailyWriter{d: d, tenant: tenant, tz: tz, version: version, computedAt: time.Now().UTC(),
		cur: &dailyCols{}, batches: make(chan *dailyCols, 1), done: make(chan error, 1)}
	go func() {
		var err error
		for b := range w.batches {
			if err == nil {
				if err = w.insert(ctx, b); err != nil {
					w.failed.Store(true)
				}
			}
		}
		w.done <- err
	}()
	return w
}

func (w *dailyWriter) add(ctx context.Context, rows []DailyRow) error {
	c := w.cur
	for i := range rows {
		r := &rows[i]
		if !r.Quantity.Equal(r.Quantity.Truncate(9)) {
			return fmt.Errorf("reports: daily quantity %s has more than 9 decimal places", r.Quantity)
		}
		c.day = append(c.day, dateTime(r.Day))
		c.customer, c.contract, c.element = append(c.customer, r.Customer), append(c.contract, r.Contract), append(c.element, r.Element)
		c.user, c.subscriber = append(c.user, r.User), append(c.subscriber, r.Subscriber)
		c.workspace, c.location = append(c.workspace, r.Workspace), append(c.location, r.Location)
		c.quantity, c.daySeconds = append(c.quantity, r.Quantity), append(c.daySeconds, r.DaySeconds)
	}
	if len(c.day) >= w.d.InsertBatch {
		return w.flush(ctx)
	}
	return nil
}

// flush hands the current batch to the inserter.
func (w *dailyWriter) flush(ctx context.Context) error {
	if w.failed.Load() {
		return fmt.Errorf("reports: an insert of daily rows failed")
	}
	if len(w.cur.day) == 0 {
		return nil
	}
	select {
	case w.batches <- w.cur:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.n += len(w.cur.day)
	w.cur = &dailyCols{}
	return nil
}

// finish inserts what is left and waits for every insert; after it the
// writer is done (also when it returns an error).
func (w *dailyWriter) finish(ctx context.Context) error {
	err := w.flush(ctx)
	close(w.batches)
	if ierr := <-w.done; ierr != nil {
		return ierr
	}
	return err
}

func (w *dailyWriter) insert(ctx context.Context, c *dailyCols) error {
	n := len(c.day)
	b, err := w.d.conn.PrepareBatch(ctx, "INSERT INTO usage_daily ("+dailyColumns+")")
	if err != nil {
		return fmt.Errorf("reports: prepare daily insert: %w", err)
	}
	tenants, tzs := make([]string, n), make([]string, n)
	at, versions := make([]time.Time, n), make([]uint64, n)
	for i := range n {
		tenants[i], tzs[i], at[i], versions[i] = w.tenant, w.tz, w.computedAt, w.version
	}
	for i, col := range []any{tenants, tzs, c.day, c.customer, c.contract, c.element, c.user, c.subscriber, c.workspace,
		c.location, c.quantity, c.daySeconds, at, versions} {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("reports: append daily column %d: %w", i, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("reports: insert %d daily rows: %w", n, err)
	}
	return nil
}

// groupColumns are the usage_daily columns a report of type t groups by.
func groupColumns(t Type) []string {
	switch t {
	case TypePartner:
		return []string{"contract", "element"}
	case TypeCustomer:
		return []string{"customer", "contract", "element", "location"}
	default:
		return []string{"customer", "contract", "element", "user", "subscriber", "workspace", "location"}
	}
}

// Aggregate is one row of a report before names are looked up: the group's
// keys (as groupColumns names them), the summed day fractions and the first
// and last day with usage.
type Aggregate struct {
	Keys       []string
	Quantity   decimal.Decimal
	Start, End catalog.Date
}

// Aggregates reads the report's rows from usage_daily: the days first..last
// of zone tz summed to the level of t, only customers (nil: all), groups
// with a non-zero quantity, in key order. With version 0 it reads the table
// FINAL (the latest computation of every key); otherwise exactly the rows of
// the computation with that version — each of which that one run wrote once
// (a run that fails starts over with a new version), so no FINAL is needed
// and a later computation of the same days by another report cannot change
// this one. ClickHouse only sorts the rows by the group's keys; the sums are
// made here, exactly, over consecutive rows (a GROUP BY of seven strings
// took ten times as long as the sorted read on 1 M rows, and 18.16 must not
// group by a Decimal128 next to a String anyway).
func (d *DB) Aggregates(ctx context.Context, tenant, tz string, first, last catalog.Date, version uint64, t Type, customers []string, fn func(*Aggregate) error) error {
	cols := groupColumns(t)
	keys := strings.Join(cols, ", ")
	from := "usage_daily FINAL"
	where, args := "tenant = ? AND time_zone = ? AND day >= toDate(?) AND day <= toDate(?)", []any{tenant, tz, first.String(), last.String()}
	if version != 0 {
		from, where, args = "usage_daily", where+" AND version = ?", append(args, version)
	}
	if customers != nil {
		if len(customers) == 0 {
			return nil
		}
		where += " AND has(?, customer)"
		args = append(args, customers)
	}
	rows, err := d.conn.Query(ctx, "SELECT "+keys+", quantity, day FROM "+from+" WHERE "+where+" ORDER BY "+keys, args...)
	if err != nil {
		return fmt.Errorf("reports: read daily usage: %w", err)
	}
	defer rows.Close()
	n := len(cols)
	rk := make([]string, n)
	var (
		qty  decimal.Decimal
		day  time.Time
		have bool
		days bool // a non-zero day seen in the current group
		a    = Aggregate{Keys: make([]string, n)}
	)
	dest := make([]any, 0, n+2)
	for i := range rk {
		dest = append(dest, &rk[i])
	}
	dest = append(dest, &qty, &day)
	emit := func() error {
		if !have || a.Quantity.IsZero() {
			return nil
		}
		return fn(&a)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("reports: scan daily usage: %w", err)
		}
		if !have || !slices.Equal(rk, a.Keys) {
			if err := emit(); err != nil {
				return err
			}
			copy(a.Keys, rk)
			a.Quantity, have, days = decimal.Zero, true, false
		}
		a.Quantity = a.Quantity.Add(qty)
		if !qty.IsZero() {
			dd := catalog.DateOf(day.UTC())
			if !days || dd.Before(a.Start) {
				a.Start = dd
			}
			if !days || dd.After(a.End) {
				a.End = dd
			}
			days = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reports: read daily usage: %w", err)
	}
	return emit()
}
