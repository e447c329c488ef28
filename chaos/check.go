package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// Got is what the pipeline holds for one tenant.
type Got struct {
	RawCopies  map[string]int // usage.raw messages per event id
	Records    map[string]int // usage_records FINAL rows per event id
	Lines      int
	Totals     map[string]decimal.Decimal // "customer period" → Σ amount (FINAL)
	Duplicates int
	Unrated    int
}

// TenantResult compares one tenant's expected and stored state.
type TenantResult struct {
	Tenant         string
	Exp            Expected
	Got            Got
	ExpDuplicates  int // Σ (usage.raw copies − 1) over the acknowledged ids
	RetryCopies    int // copies the client's retries stored beyond its intended re-sends
	ExpAmount      decimal.Decimal
	GotAmount      decimal.Decimal
	WrongMonths    []string // customer-periods whose total differs, "customer period: want X got Y"
	MissingRaw     []string // acknowledged ids not in usage.raw
	StrayRaw       []string // ids in usage.raw nobody was acknowledged for
	MissingRecords []string // acknowledged ids not in usage_records
	StrayRecords   []string // ids in usage_records not acknowledged
	Problems       []string
}

// OK reports whether the tenant came out exact.
func (r *TenantResult) OK() bool { return len(r.Problems) == 0 }

// readRaw counts the usage.raw messages of each (tenant, event id).
func readRaw(ctx context.Context, broker string, partitions int) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", broker, schemas.TopicRaw, p)
		if err != nil {
			return nil, fmt.Errorf("dial usage.raw/%d: %w", p, err)
		}
		err = func() error {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(time.Minute))
			first, last, err := conn.ReadOffsets()
			if err != nil {
				return fmt.Errorf("offsets: %w", err)
			}
			if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
				return fmt.Errorf("seek: %w", err)
			}
			for off := first; off < last; {
				batch := conn.ReadBatch(1, 16<<20)
				for {
					m, err := batch.ReadMessage()
					if err != nil {
						if errors.Is(err, io.EOF) {
							break
						}
						batch.Close()
						return fmt.Errorf("read at %d: %w", off, err)
					}
					off = m.Offset + 1
					var tenant, id string
					for _, h := range m.Headers {
						switch h.Key {
						case schemas.HeaderTenant:
							tenant = string(h.Value)
						case schemas.HeaderEventID:
							id = string(h.Value)
						}
					}
					if out[tenant] == nil {
						out[tenant] = map[string]int{}
					}
					out[tenant][id]++
				}
				if err := batch.Close(); err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("batch at %d: %w", off, err)
				}
			}
			return nil
		}()
		if err != nil {
			return nil, fmt.Errorf("usage.raw/%d: %w", p, err)
		}
	}
	return out, nil
}

// readStored reads a tenant's state from ClickHouse, deduplicated (FINAL).
func readStored(ctx context.Context, ch driver.Conn, tenant string) (Got, error) {
	g := Got{Records: map[string]int{}, Totals: map[string]decimal.Decimal{}}
	rows, err := ch.Query(ctx, `SELECT event_id FROM usage_records FINAL WHERE tenant = ?`, tenant)
	if err != nil {
		return g, fmt.Errorf("usage_records: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return g, fmt.Errorf("usage_records: %w", err)
		}
		g.Records[id]++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return g, fmt.Errorf("usage_records: %w", err)
	}
	rows, err = ch.Query(ctx, `SELECT customer, period, count(), sum(amount) FROM rated_usage FINAL WHERE tenant = ? GROUP BY customer, period`, tenant)
	if err != nil {
		return g, fmt.Errorf("rated_usage: %w", err)
	}
	for rows.Next() {
		var cust, period string
		var n uint64
		var amt decimal.Decimal
		if err := rows.Scan(&cust, &period, &n, &amt); err != nil {
			rows.Close()
			return g, fmt.Errorf("rated_usage: %w", err)
		}
		g.Lines += int(n)
		g.Totals[cust+" "+period] = amt
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return g, fmt.Errorf("rated_usage: %w", err)
	}
	var n uint64
	if err := ch.QueryRow(ctx, `SELECT count() FROM usage_duplicates FINAL WHERE tenant = ?`, tenant).Scan(&n); err != nil {
		return g, fmt.Errorf("usage_duplicates: %w", err)
	}
	g.Duplicates = int(n)
	if err := ch.QueryRow(ctx, `SELECT count() FROM usage_unrated FINAL WHERE tenant = ?`, tenant).Scan(&n); err != nil {
		return g, fmt.Errorf("usage_unrated: %w", err)
	}
	g.Unrated = int(n)
	return g, nil
}

// compare checks one tenant: every acknowledged record in usage.raw and
// stored once in usage_records, nothing else stored; rated lines, totals
// per customer-period, duplicates and unrated records exact.
func compare(tenant string, exp Expected, got Got) *TenantResult {
	r := &TenantResult{Tenant: tenant, Exp: exp, Got: got}
	for id := range exp.Records {
		c := got.RawCopies[id]
		if c == 0 {
			r.MissingRaw = append(r.MissingRaw, id)
			continue
		}
		r.ExpDuplicates += c - 1
		if got.Records[id] == 0 {
			r.MissingRecords = append(r.MissingRecords, id)
		}
	}
	for id := range got.RawCopies {
		if !exp.Records[id] {
			r.StrayRaw = append(r.StrayRaw, id)
		}
	}
	for id := range got.Records {
		if !exp.Records[id] {
			r.StrayRecords = append(r.StrayRecords, id)
		}
	}
	r.RetryCopies = r.ExpDuplicates - exp.Resends
	keys := map[string]bool{}
	for k, v := range exp.Totals {
		keys[k] = true
		r.ExpAmount = r.ExpAmount.Add(v)
	}
	for k, v := range got.Totals {
		keys[k] = true
		r.GotAmount = r.GotAmount.Add(v)
	}
	for _, k := range sortedKeys(keys) {
		if w, g := exp.Totals[k], got.Totals[k]; !w.Equal(g) {
			r.WrongMonths = append(r.WrongMonths, fmt.Sprintf("%s: want %s got %s (diff %s)", k, w, g, g.Sub(w)))
		}
	}
	add := func(cond bool, format string, args ...any) {
		if cond {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	add(len(r.MissingRaw) > 0, "%d acknowledged records not in usage.raw (e.g. %v)", len(r.MissingRaw), first(r.MissingRaw))
	add(len(r.StrayRaw) > 0, "%d records in usage.raw that were not acknowledged (e.g. %v)", len(r.StrayRaw), first(r.StrayRaw))
	add(len(r.MissingRecords) > 0, "%d acknowledged records not in usage_records (e.g. %v)", len(r.MissingRecords), first(r.MissingRecords))
	add(len(r.StrayRecords) > 0, "%d records in usage_records that were not acknowledged (e.g. %v)", len(r.StrayRecords), first(r.StrayRecords))
	add(got.Lines != exp.Lines, "%d rated lines, want %d", got.Lines, exp.Lines)
	add(len(r.WrongMonths) > 0, "%d customer-periods wrong (e.g. %v)", len(r.WrongMonths), first(r.WrongMonths))
	add(got.Duplicates != r.ExpDuplicates, "%d duplicates flagged, want %d (usage.raw copies beyond the first)", got.Duplicates, r.ExpDuplicates)
	add(got.Unrated != exp.Unrated, "%d records unrated, want %d", got.Unrated, exp.Unrated)
	return r
}

func first(s []string) []string { return s[:min(3, len(s))] }
