package corrections

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
)

// Periods keeps the tenant-level markers of closed billing periods
// (closed_periods). The monthly closing will own closing; for now a period is
// closed when its marker says so.
type Periods struct {
	conn driver.Conn
	now  func() time.Time
}

// NewPeriods returns the closed-period store.
func NewPeriods(conn driver.Conn) *Periods { return &Periods{conn: conn, now: clock.Now} }

// PeriodPattern is a billing period: YYYY-MM (monthly), YYYY-MM-DD (daily)
// or YYYY-MM-DD/P1W (weekly, by its first day), as pricing.PeriodID
// renders them.
var PeriodPattern = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(/P1W)?)?$`)

// PeriodState is one period's marker.
type PeriodState struct {
	Period    string
	Closed    bool
	ChangedAt time.Time
	ChangedBy string
}

// Set closes (closed true) or reopens a tenant's period. Every change is a
// new version; the newest wins.
func (p *Periods) Set(ctx context.Context, tenantID, period string, closed bool, actor string) error {
	if !schemas.ValidTenant(tenantID) {
		return fmt.Errorf("malformed tenant id %q", tenantID)
	}
	if !PeriodPattern.MatchString(period) {
		return fmt.Errorf("period %q is not YYYY-MM, YYYY-MM-DD or YYYY-MM-DD/P1W", period)
	}
	now := p.now().UTC()
	b, err := p.conn.PrepareBatch(ctx, "INSERT INTO closed_periods (tenant, period, closed, changed_at, changed_by, version)")
	if err != nil {
		return fmt.Errorf("close period: %w", err)
	}
	flag := uint8(0)
	if closed {
		flag = 1
	}
	if err := b.Append(tenantID, period, flag, now, actor, uint64(now.UnixNano())); err != nil {
		_ = b.Abort()
		return fmt.Errorf("close period: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("close period: %w", err)
	}
	return nil
}

// List returns every period of the tenant that has a marker, in order.
func (p *Periods) List(ctx context.Context, tenantID string) ([]PeriodState, error) {
	// No WHERE on the non-key closed column next to FINAL: filtered in Go.
	rows, err := p.conn.Query(ctx, `SELECT period, closed, changed_at, changed_by FROM closed_periods FINAL
		WHERE tenant = ? ORDER BY period`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("closed periods: %w", err)
	}
	defer rows.Close()
	var out []PeriodState
	for rows.Next() {
		var s PeriodState
		var closed uint8
		if err := rows.Scan(&s.Period, &closed, &s.ChangedAt, &s.ChangedBy); err != nil {
			return nil, fmt.Errorf("closed periods: %w", err)
		}
		s.Closed, s.ChangedAt = closed == 1, s.ChangedAt.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// Closed returns the tenant's closed periods.
func (p *Periods) Closed(ctx context.Context, tenantID string) (map[string]bool, error) {
	list, err := p.List(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range list {
		if s.Closed {
			out[s.Period] = true
		}
	}
	return out, nil
}
