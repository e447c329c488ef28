package tenants

import (
	"context"
	"fmt"
	"time"
)

// DataLimits are how much data a tenant may hold (000 §3(4)); 0 means the
// default (100,000 customers, 100,000 service + discount contracts,
// 1,000,000 receivable detail lines). The catalogue store refuses
// registrations beyond the first two; the billing run refuses a run beyond
// the third.
type DataLimits struct {
	Customers   int `json:"customers"`
	Contracts   int `json:"contracts"`
	DetailLines int `json:"detail_lines"`
}

// The defaults of DataLimits' zero fields.
const (
	DefaultMaxCustomers   = 100_000
	DefaultMaxContracts   = 100_000
	DefaultMaxDetailLines = 1_000_000
)

// WithDefaults returns l with every zero field set to its default.
func (l DataLimits) WithDefaults() DataLimits {
	if l.Customers == 0 {
		l.Customers = DefaultMaxCustomers
	}
	if l.Contracts == 0 {
		l.Contracts = DefaultMaxContracts
	}
	if l.DetailLines == 0 {
		l.DetailLines = DefaultMaxDetailLines
	}
	return l
}

// DataLimits returns a tenant's data limits as set (zero fields: default).
func (s *Store) DataLimits(ctx context.Context, tenant string) (DataLimits, error) {
	rows, err := s.conn.Query(ctx, `SELECT max_customers, max_contracts, max_detail_lines FROM tenant_data_limits FINAL
		WHERE tenant = ?`, tenant)
	if err != nil {
		return DataLimits{}, fmt.Errorf("data limits of %s: %w", tenant, err)
	}
	defer rows.Close()
	var l DataLimits
	if rows.Next() {
		var c, k, d uint32
		if err := rows.Scan(&c, &k, &d); err != nil {
			return DataLimits{}, fmt.Errorf("data limits of %s: %w", tenant, err)
		}
		l = DataLimits{Customers: int(c), Contracts: int(k), DetailLines: int(d)}
	}
	return l, rows.Err()
}

// SetDataLimits replaces a tenant's data limits (zero fields: default).
func (s *Store) SetDataLimits(ctx context.Context, tenant string, l DataLimits, actor string) error {
	for _, v := range []int{l.Customers, l.Contracts, l.DetailLines} {
		if v < 0 || v > 1<<31 {
			return fmt.Errorf("set data limits: %d is out of range (0 to 2^31)", v)
		}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO tenant_data_limits (tenant, max_customers, max_contracts, max_detail_lines, changed_by, version)")
	if err != nil {
		return fmt.Errorf("set data limits: %w", err)
	}
	if err := b.Append(tenant, uint32(l.Customers), uint32(l.Contracts), uint32(l.DetailLines), actor, uint64(now().UnixNano())); err != nil {
		_ = b.Abort()
		return fmt.Errorf("set data limits: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("set data limits: %w", err)
	}
	return nil
}
