package billingdb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// Store reads and writes the billing tables.
type Store struct{ conn driver.Conn }

// New returns the store over a migrated database.
func New(conn driver.Conn) *Store { return &Store{conn: conn} }

// Stored is a receivable as stored: its content plus its state.
type Stored struct {
	*billing.Receivable
	Status     billing.Status
	NumberSeq  uint64
	Number     string
	IssuedAt   time.Time // zero while a draft
	VoidReason string
	ChangedBy  string
	Revision   uint64
	LineCount  uint32
}

// Write is one receivable revision to store: the receivable (with its
// lines, or without them when only the state changes: lines nil and
// KeepLines set) and the ids of lines the previous revision had that this one
// has not (written again as deleted).
type Write struct {
	Stored
	KeepLines bool
	Gone      []string
}

const receivableColumns = `tenant, period, receivable_id, customer, basic_contract, currency, period_start, period_end,
	time_zone, rounding, status, number_seq, number, subtotal, discounts, adjustments, tax_exclusive, tax_included,
	total, lines, taxes_json, content_hash, issued_at, void_reason, changed_by, revision`

const lineColumns = `tenant, period, receivable_id, line_id, seq, kind, contract, plan, fee, item, rate_table,
	quantity, unit_price, unit_priced, amount, tax_category, tax_rate, tax_inclusive, tax, charge_period,
	charge_from, charge_to, note, deleted, revision`

// insertChunk bounds the rows of one insert (one part, written atomically).
const insertChunk = 50_000

func dateOf(d catalog.Date) time.Time {
	if d.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

func fromDate(t time.Time) catalog.Date {
	if t.Unix() == 0 {
		return catalog.Date{}
	}
	return catalog.DateOf(t.UTC())
}

func chTime(t time.Time) time.Time {
	if t.IsZero() || t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// stringSet binds a list of strings to one IN (?) placeholder.
func stringSet(ss []string) clickhouse.GroupSet {
	set := make([]any, len(ss))
	for i, s := range ss {
		set[i] = s
	}
	return clickhouse.GroupSet{Value: set}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// storable refuses a decimal the driver would silently truncate (more than
// 9 fraction digits) or that does not fit Decimal(38, 9).
func storable(name string, d decimal.Decimal) error {
	if d.Exponent() < -9 && !d.Equal(d.Truncate(9)) {
		return fmt.Errorf("%s %s has more than 9 decimals", name, d)
	}
	if d.Abs().Cmp(decimal.New(1, 28)) >= 0 {
		return fmt.Errorf("%s %s does not fit Decimal(38, 9)", name, d)
	}
	return nil
}

type taxJSON struct {
	Category  string `json:"category"`
	Rate      string `json:"rate"`
	Inclusive bool   `json:"inclusive"`
	Subtotal  string `json:"subtotal"`
	Discounts string `json:"discounts"`
	Adjust    string `json:"adjustments"`
	Base      string `json:"base"`
	Tax       string `json:"tax"`
	// Rounding is the group's rounding line, when it has one (receivables
	// stored before rounding lines have none).
	Rounding string `json:"rounding,omitempty"`
}

func encodeTaxes(ts []billing.TaxSummary) string {
	out := make([]taxJSON, len(ts))
	for i, t := range ts {
		out[i] = taxJSON{string(t.Category), t.Rate.String(), t.Inclusive, t.Subtotal.String(), t.Discounts.String(),
			t.Adjust.String(), t.Base.String(), t.Tax.String(), ""}
		if !t.Rounding.IsZero() {
			out[i].Rounding = t.Rounding.String()
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func decodeTaxes(s string) ([]billing.TaxSummary, error) {
	var in []taxJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]billing.TaxSummary, len(in))
	for i, t := range in {
		var err error
		ds := []*decimal.Decimal{&out[i].Rate, &out[i].Subtotal, &out[i].Discounts, &out[i].Adjust, &out[i].Base, &out[i].Tax}
		for j, v := range []string{t.Rate, t.Subtotal, t.Discounts, t.Adjust, t.Base, t.Tax} {
			if *ds[j], err = decimal.NewFromString(v); err != nil {
				return nil, err
			}
		}
		out[i].Category, out[i].Inclusive = catalog.TaxCategory(t.Category), t.Inclusive
		out[i].Rounding = decimal.Zero
		if t.Rounding != "" {
			if out[i].Rounding, err = decimal.NewFromString(t.Rounding); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// WriteReceivables stores receivable revisions: first every line (new and
// gone) in inserts of at most 50,000 rows, then the receivables' rows in
// the order given, in inserts of at most 50,000 rows (each insert one part:
// all of it or none). A crash between leaves lines of a revision whose
// receivable row is not written yet; the resumed run writes the same rows
// again.
func (s *Store) WriteReceivables(ctx context.Context, ws []Write) error {
	if len(ws) == 0 {
		return nil
	}
	var lb driver.Batch
	n := 0
	flush := func() error {
		if lb == nil {
			return nil
		}
		err := lb.Send()
		lb, n = nil, 0
		if err != nil {
			return fmt.Errorf("insert receivable lines: %w", err)
		}
		return nil
	}
	appendLine := func(args ...any) error {
		if lb == nil {
			var err error
			if lb, err = s.conn.PrepareBatch(ctx, "INSERT INTO receivable_lines ("+lineColumns+")"); err != nil {
				return fmt.Errorf("insert receivable lines: %w", err)
			}
		}
		if err := lb.Append(args...); err != nil {
			_ = lb.Abort()
			lb = nil
			return fmt.Errorf("insert receivable lines: %w", err)
		}
		if n++; n >= insertChunk {
			return flush()
		}
		return nil
	}
	zero := time.Unix(0, 0).UTC()
	for _, w := range ws {
		r := w.Receivable
		if !w.KeepLines {
			for i := range r.Lines {
				l := &r.Lines[i]
				for _, d := range []struct {
					n string
					v decimal.Decimal
				}{{"quantity", l.Quantity}, {"unit price", l.UnitPrice}, {"amount", l.Amount}, {"tax", l.Tax}} {
					if err := storable(r.ID+" line "+l.ID+" "+d.n, d.v); err != nil {
						return err
					}
				}
				if err := appendLine(r.Tenant, r.Period, r.ID, l.ID, uint32(l.Seq), string(l.Kind), l.Contract, l.Plan, l.Fee,
					l.Item, l.Rate, l.Quantity, l.UnitPrice, b2u(l.UnitPriced), l.Amount, string(l.TaxCategory), l.TaxRate,
					b2u(l.TaxInclusive), l.Tax, l.ChargePeriod, dateOf(l.ChargeFrom), dateOf(l.ChargeTo), l.Note, uint8(0),
					w.Revision); err != nil {
					return err
				}
			}
		}
		for _, id := range w.Gone {
			if err := appendLine(r.Tenant, r.Period, r.ID, id, uint32(0), "", "", "", "", "", "", decimal.Zero, decimal.Zero,
				uint8(0), decimal.Zero, "", decimal.Zero, uint8(0), decimal.Zero, "", zero, zero, "", uint8(1), w.Revision); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for start := 0; start < len(ws); start += insertChunk {
		end := min(start+insertChunk, len(ws))
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO receivables ("+receivableColumns+")")
		if err != nil {
			return fmt.Errorf("insert receivables: %w", err)
		}
		for _, w := range ws[start:end] {
			r := w.Receivable
			lines := uint32(len(r.Lines))
			if w.KeepLines {
				lines = w.LineCount
			}
			for _, d := range []decimal.Decimal{r.Subtotal, r.Discounts, r.Adjustments, r.TaxExclusive, r.TaxIncluded, r.Total} {
				if err := storable(r.ID+" total", d); err != nil {
					_ = b.Abort()
					return err
				}
			}
			if err := b.Append(r.Tenant, r.Period, r.ID, r.Customer, r.BasicContract, r.Currency, dateOf(r.PeriodStart),
				dateOf(r.PeriodEnd), r.TimeZone, string(r.Rounding), string(w.Status), w.NumberSeq, w.Number, r.Subtotal,
				r.Discounts, r.Adjustments, r.TaxExclusive, r.TaxIncluded, r.Total, lines, encodeTaxes(r.Taxes), r.Hash,
				chTime(w.IssuedAt), w.VoidReason, w.ChangedBy, w.Revision); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert receivables: %w", err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("insert receivables: %w", err)
		}
	}
	return nil
}

func scanReceivable(rows driver.Rows) (*Stored, error) {
	r := &billing.Receivable{}
	st := &Stored{Receivable: r}
	var start, end time.Time
	var status, rounding, taxes string
	if err := rows.Scan(&r.Tenant, &r.Period, &r.ID, &r.Customer, &r.BasicContract, &r.Currency, &start, &end,
		&r.TimeZone, &rounding, &status, &st.NumberSeq, &st.Number, &r.Subtotal, &r.Discounts, &r.Adjustments,
		&r.TaxExclusive, &r.TaxIncluded, &r.Total, &st.LineCount, &taxes, &r.Hash, &st.IssuedAt, &st.VoidReason,
		&st.ChangedBy, &st.Revision); err != nil {
		return nil, err
	}
	r.PeriodStart, r.PeriodEnd = fromDate(start), fromDate(end)
	r.Rounding, st.Status = money.Mode(rounding), billing.Status(status)
	if st.IssuedAt.Unix() == 0 {
		st.IssuedAt = time.Time{}
	} else {
		st.IssuedAt = st.IssuedAt.UTC()
	}
	var err error
	if r.Taxes, err = decodeTaxes(taxes); err != nil {
		return nil, fmt.Errorf("receivable %s: taxes: %w", r.ID, err)
	}
	// The rounding lines' sum is the groups' (taxes_json keeps it; there is
	// no column of its own).
	r.RoundingAmount = decimal.Zero
	for _, t := range r.Taxes {
		r.RoundingAmount = r.RoundingAmount.Add(t.Rounding)
	}
	return st, nil
}

// Get returns one receivable of the tenant (without lines), or nil. It
// reads every stored row of the id without FINAL (PREWHERE on the id: only
// the granules holding it are read in full) and keeps the newest revision:
// the answer FINAL gives (rows of one revision are identical), without
// FINAL's read and merge of the key's granule in every part (by hand under
// load: 13-48 ms against 31-79 ms; BenchmarkReceivableReads for the rest).
func (s *Store) Get(ctx context.Context, tenant, id string) (*Stored, error) {
	period, ok := billing.PeriodOfID(id)
	if !ok {
		return nil, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT "+receivableColumns+" FROM receivables PREWHERE receivable_id = ? WHERE tenant = ? AND period = ?",
		id, tenant, period)
	if err != nil {
		return nil, fmt.Errorf("read receivable %s: %w", id, err)
	}
	defer rows.Close()
	var newest *Stored
	for rows.Next() {
		st, err := scanReceivable(rows)
		if err != nil {
			return nil, fmt.Errorf("read receivable %s: %w", id, err)
		}
		if newest == nil || st.Revision > newest.Revision {
			newest = st
		}
	}
	return newest, rows.Err()
}

// Period returns every receivable of a tenant's period (without lines),
// ordered by id.
func (s *Store) Period(ctx context.Context, tenant, period string) ([]*Stored, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+receivableColumns+" FROM receivables FINAL WHERE tenant = ? AND period = ? ORDER BY receivable_id",
		tenant, period)
	if err != nil {
		return nil, fmt.Errorf("read receivables of %s: %w", period, err)
	}
	defer rows.Close()
	var out []*Stored
	for rows.Next() {
		st, err := scanReceivable(rows)
		if err != nil {
			return nil, fmt.Errorf("read receivables of %s: %w", period, err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// LineKey is the keyset position of a line: its place in the receivable.
type LineKey struct {
	Seq uint32
	ID  string
}

// Lines returns up to limit current lines of a receivable after the given
// position, in their order in the receivable.
func (s *Store) Lines(ctx context.Context, tenant, id string, after *LineKey, limit int) ([]billing.Line, error) {
	period, ok := billing.PeriodOfID(id)
	if !ok {
		return nil, nil
	}
	// Every row of the receivable's lines, reduced to each line's newest
	// revision with argMax (what FINAL gives: rows of one revision are
	// identical), read with PREWHERE on the id: only the granules holding
	// the receivable are read in full, where FINAL read and merged the key's
	// granule of every part.
	q := `SELECT line_id, argMax(seq, revision) AS s, argMax(kind, revision), argMax(contract, revision), argMax(plan, revision),
		argMax(fee, revision), argMax(item, revision), argMax(rate_table, revision), argMax(quantity, revision),
		argMax(unit_price, revision), argMax(unit_priced, revision), argMax(amount, revision), argMax(tax_category, revision),
		argMax(tax_rate, revision), argMax(tax_inclusive, revision), argMax(tax, revision), argMax(charge_period, revision),
		argMax(charge_from, revision), argMax(charge_to, revision), argMax(note, revision), argMax(deleted, revision) AS gone
		FROM receivable_lines PREWHERE receivable_id = ? WHERE tenant = ? AND period = ?
		GROUP BY line_id HAVING gone = 0`
	args := []any{id, tenant, period}
	if after != nil {
		q += " AND (s > ? OR (s = ? AND line_id > ?))"
		args = append(args, after.Seq, after.Seq, after.ID)
	}
	q += " ORDER BY s, line_id"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read lines of %s: %w", id, err)
	}
	defer rows.Close()
	var out []billing.Line
	for rows.Next() {
		var l billing.Line
		var seq uint32
		var kind, cat string
		var up, incl, gone uint8
		var from, to time.Time
		if err := rows.Scan(&l.ID, &seq, &kind, &l.Contract, &l.Plan, &l.Fee, &l.Item, &l.Rate, &l.Quantity, &l.UnitPrice,
			&up, &l.Amount, &cat, &l.TaxRate, &incl, &l.Tax, &l.ChargePeriod, &from, &to, &l.Note, &gone); err != nil {
			return nil, fmt.Errorf("read lines of %s: %w", id, err)
		}
		l.Seq, l.Kind, l.TaxCategory = int(seq), billing.Kind(kind), catalog.TaxCategory(cat)
		l.UnitPriced, l.TaxInclusive = up == 1, incl == 1
		l.ChargeFrom, l.ChargeTo, l.BillingPeriod = fromDate(from), fromDate(to), period
		out = append(out, l)
	}
	return out, rows.Err()
}

// GetWithLines returns a receivable (nil when the tenant has none of that
// id) and up to limit of its current lines after the given position, the two
// reads run at once: what GET /v1/receivables/{id}/lines answers from.
func (s *Store) GetWithLines(ctx context.Context, tenant, id string, after *LineKey, limit int) (*Stored, []billing.Line, error) {
	type lines struct {
		ls  []billing.Line
		err error
	}
	ch := make(chan lines, 1)
	go func() {
		ls, err := s.Lines(ctx, tenant, id, after, limit)
		ch <- lines{ls, err}
	}()
	st, err := s.Get(ctx, tenant, id)
	l := <-ch
	if err != nil {
		return nil, nil, err
	}
	if l.err != nil {
		return nil, nil, l.err
	}
	if st == nil {
		return nil, nil, nil
	}
	return st, l.ls, nil
}

// LineIDs returns the current line ids of the given receivables of a period.
func (s *Store) LineIDs(ctx context.Context, tenant, period string, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	for start := 0; start < len(ids); start += 10_000 {
		part := ids[start:min(start+10_000, len(ids))]
		rows, err := s.conn.Query(ctx, `SELECT receivable_id, line_id FROM receivable_lines FINAL
			WHERE tenant = ? AND period = ? AND receivable_id IN (?) AND deleted = 0`, tenant, period, stringSet(part))
		if err != nil {
			return nil, fmt.Errorf("read line ids of %s: %w", period, err)
		}
		for rows.Next() {
			var r, l string
			if err := rows.Scan(&r, &l); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read line ids of %s: %w", period, err)
			}
			out[r] = append(out[r], l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read line ids of %s: %w", period, err)
		}
	}
	return out, nil
}

// CountLines counts a tenant's current detail lines (for the data limit),
// leaving out the periods given (a run replaces its period's lines).
func (s *Store) CountLines(ctx context.Context, tenant string, except ...string) (uint64, error) {
	q := "SELECT count() FROM receivable_lines FINAL WHERE tenant = ? AND deleted = 0"
	args := []any{tenant}
	if len(except) > 0 {
		q += " AND period NOT IN (?)"
		args = append(args, stringSet(except))
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count lines of %s: %w", tenant, err)
	}
	return n, nil
}

// MaxNumber returns the highest number sequence the tenant has assigned
// (0 when none): numbers are never reused, so the next is this + 1.
func (s *Store) MaxNumber(ctx context.Context, tenant string) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT max(number_seq) FROM receivables FINAL WHERE tenant = ?", tenant).Scan(&n); err != nil {
		return 0, fmt.Errorf("read numbers of %s: %w", tenant, err)
	}
	return n, nil
}

// Filter narrows a receivable search. Empty fields match everything.
type Filter struct {
	Customer      string
	Customers     []string // any of these (a group's members)
	BasicContract string
	Period        string
	Status        string
	Number        string
	MinTotal      *decimal.Decimal
	MaxTotal      *decimal.Decimal
	IssuedFrom    *time.Time // inclusive
	IssuedTo      *time.Time // exclusive
}

func (f Filter) where(tenant string) (string, []any) {
	conds := []string{"tenant = ?"}
	args := []any{tenant}
	add := func(c string, a ...any) { conds = append(conds, c); args = append(args, a...) }
	if f.Customer != "" {
		add("customer = ?", f.Customer)
	}
	if len(f.Customers) > 0 {
		add("customer IN (?)", stringSet(f.Customers))
	}
	if f.BasicContract != "" {
		add("basic_contract = ?", f.BasicContract)
	}
	if f.Period != "" {
		add("period = ?", f.Period)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Number != "" {
		add("number = ?", f.Number)
	}
	if f.MinTotal != nil {
		add("total >= toDecimal128(?, 9)", f.MinTotal.String())
	}
	if f.MaxTotal != nil {
		add("total <= toDecimal128(?, 9)", f.MaxTotal.String())
	}
	if f.IssuedFrom != nil {
		add("issued_at >= ? AND number_seq > 0", chTime(*f.IssuedFrom))
	}
	if f.IssuedTo != nil {
		add("issued_at < ? AND number_seq > 0", chTime(*f.IssuedTo))
	}
	return strings.Join(conds, " AND "), args
}

// Key is a receivable's keyset position in a search.
type Key struct {
	Period string `json:"p"`
	ID     string `json:"i"`
}

// Search returns up to limit receivables matching f after the given
// position, ordered by (period, id). It reads in two steps: the keys of the
// page and their revisions, with FINAL over only the sorting key, the
// version and the filtered columns; then the page's rows without FINAL,
// with PREWHERE on their ids (only the granules holding them are read in
// full), keeping for each id the revision the first step matched. A FINAL
// read of every column over the tenant's range merged every column of every
// row the filter did not narrow by key (taxes_json included): 290 ms p50 and
// 1.3 s p99 for a customer at 100,000 receivables, where the first step
// alone took 13 ms. A receivable changed between the two steps and merged
// away is shown as its newest revision.
func (s *Store) Search(ctx context.Context, tenant string, f Filter, after *Key, limit int) ([]*Stored, error) {
	where, args := f.where(tenant)
	if after != nil {
		where += " AND (period > ? OR (period = ? AND receivable_id > ?))"
		args = append(args, after.Period, after.Period, after.ID)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT period, receivable_id, revision FROM receivables FINAL WHERE %s ORDER BY period, receivable_id LIMIT %d",
		where, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("search receivables: %w", err)
	}
	var keys []Key
	matched := map[string]uint64{}
	var ps []string
	for rows.Next() {
		var k Key
		var rev uint64
		if err := rows.Scan(&k.Period, &k.ID, &rev); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search receivables: %w", err)
		}
		if len(ps) == 0 || ps[len(ps)-1] != k.Period {
			ps = append(ps, k.Period)
		}
		keys, matched[k.ID] = append(keys, k), rev
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search receivables: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	rows, err = s.conn.Query(ctx, "SELECT "+receivableColumns+" FROM receivables PREWHERE receivable_id IN (?) WHERE tenant = ? AND period IN (?)",
		stringSet(ids), tenant, stringSet(ps))
	if err != nil {
		return nil, fmt.Errorf("search receivables: %w", err)
	}
	defer rows.Close()
	byID := make(map[string]*Stored, len(keys))
	for rows.Next() {
		st, err := scanReceivable(rows)
		if err != nil {
			return nil, fmt.Errorf("search receivables: %w", err)
		}
		// The revision the first step matched, else the newest.
		have, want := byID[st.ID], matched[st.ID]
		if have == nil || have.Revision != want && (st.Revision == want || st.Revision > have.Revision) {
			byID[st.ID] = st
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search receivables: %w", err)
	}
	out := make([]*Stored, 0, len(keys))
	for _, k := range keys {
		if st := byID[k.ID]; st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// Count counts the receivables matching f.
func (s *Store) Count(ctx context.Context, tenant string, f Filter) (uint64, error) {
	where, args := f.where(tenant)
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM receivables FINAL WHERE "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count receivables: %w", err)
	}
	return n, nil
}
