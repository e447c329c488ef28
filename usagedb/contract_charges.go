package usagedb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
)

// FixedLinePrefix starts the event id of every fixed-fee line the rater
// writes (rater.FixedFees): such a line's element is the fee code and its
// item is contract/fee.
const FixedLinePrefix = "fixed:"

// ContractCharges answers one service contract's charges per billing period
// (pay-per-use, 従量課金情報参照) from rated_usage.
type ContractCharges struct {
	conn driver.Conn
}

// ContractItem is one charge item of a contract in one billing period: the
// sum of its rated lines (corrections included, so an invalidated record
// nets to zero).
type ContractItem struct {
	Period string
	// Fixed is true for a fixed fee (基本額): the rater's fixed-fee lines,
	// whose Element is the fee code. Otherwise the item is metered (加算額).
	Fixed    bool
	Item     string // the charge item as rated: contract/fee, with [split values] when the fee splits
	Element  string
	Currency string
	Quantity decimal.Decimal
	Amount   decimal.Decimal
	Lines    uint64
	// FirstTime and LastTime are the earliest and latest time of the item's
	// lines (usage time; for a fixed fee, the day it fell due).
	FirstTime, LastTime time.Time
}

// NewContractCharges returns the query over conn.
func NewContractCharges(conn driver.Conn) *ContractCharges { return &ContractCharges{conn: conn} }

// Items returns the contract's items in the given billing periods
// ("YYYY-MM"), in period order, fixed items first, then by item, element
// and currency. customer is the contract's customer: rated_usage is sorted
// by (tenant, customer, period), so the read touches only that customer's
// periods. Lines are read with FINAL: a redelivered line counts once.
func (c *ContractCharges) Items(ctx context.Context, tenantID, customer, contract string, periods []string) ([]ContractItem, error) {
	if len(periods) == 0 {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(periods)), ", ")
	args := []any{tenantID, customer}
	for _, p := range periods {
		args = append(args, p)
	}
	args = append(args, contract)
	rows, err := c.conn.Query(ctx, `
		SELECT period, startsWith(event_id, '`+FixedLinePrefix+`') AS fixed, item, element, currency,
		       sum(quantity) AS quantity, sum(amount) AS amount, count() AS lines,
		       min(event_time) AS first_time, max(event_time) AS last_time
		FROM rated_usage FINAL
		WHERE tenant = ? AND customer = ? AND period IN (`+marks+`) AND contract = ?
		GROUP BY period, fixed, item, element, currency
		ORDER BY period, fixed DESC, item, element, currency`, args...)
	if err != nil {
		return nil, fmt.Errorf("contract charges of %s: %w", contract, err)
	}
	defer rows.Close()
	var out []ContractItem
	for rows.Next() {
		var it ContractItem
		var fixed uint8
		if err := rows.Scan(&it.Period, &fixed, &it.Item, &it.Element, &it.Currency, &it.Quantity, &it.Amount,
			&it.Lines, &it.FirstTime, &it.LastTime); err != nil {
			return nil, fmt.Errorf("contract charges of %s: %w", contract, err)
		}
		it.Fixed = fixed == 1
		it.FirstTime, it.LastTime = it.FirstTime.UTC(), it.LastTime.UTC()
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contract charges of %s: %w", contract, err)
	}
	return out, nil
}
