package usagedb

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// Charges answers a customer's charges for one billing period from ClickHouse.
type Charges struct {
	conn driver.Conn
}

// NewCharges returns the charges query.
func NewCharges(conn driver.Conn) *Charges { return &Charges{conn: conn} }

// ChargeLine is the total of one element for a customer and period.
type ChargeLine struct {
	Element  string `json:"element"`
	Quantity string `json:"quantity"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Events   uint64 `json:"events"`
}

// Total is the sum of all lines in one currency.
type Total struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// ChargesResponse is the body of GET /v1/charges. Currency and Total are set
// when every line is in one currency (the normal case).
type ChargesResponse struct {
	Customer string       `json:"customer"`
	Contract string       `json:"contract,omitempty"` // set when the answer is one service contract's
	Period   string       `json:"period"`
	Currency string       `json:"currency,omitempty"`
	Total    string       `json:"total,omitempty"`
	Totals   []Total      `json:"totals"`
	Lines    []ChargeLine `json:"lines"`
	// PeriodClosed marks a closed billing period's figures (set by the
	// charges route): these are the stream's charges, which usage and
	// corrections received after the close still move; the period's
	// receivables are final, and the difference is billed as adjustment
	// lines of the next open period.
	PeriodClosed bool `json:"period_closed,omitempty"`
}

// Query sums the customer's rated lines for the period, per element. A
// correction line (invalidate, cancel) sums like any line. events counts the
// records that count now: the lines of never-corrected records (one each),
// plus the distinct corrected records whose latest generation is valid — the
// corrected set is small, so the exact distinct count stays cheap.
func (c *Charges) Query(ctx context.Context, tenantID, customer, period string) (*ChargesResponse, error) {
	return c.QueryContract(ctx, tenantID, customer, period, "")
}

// QueryContract is Query narrowed to the lines of one service contract of
// the customer; an empty contract is every line of the customer.
func (c *Charges) QueryContract(ctx context.Context, tenantID, customer, period, contract string) (*ChargesResponse, error) {
	rows, err := c.conn.Query(ctx, `
		SELECT element, currency, sum(quantity) AS quantity, sum(amount) AS amount,
		       countIf(event_id NOT IN (SELECT event_id FROM usage_status WHERE tenant = ? AND customer = ?)) +
		       uniqExactIf(event_id, event_id IN (
		           SELECT event_id FROM usage_status WHERE tenant = ? AND customer = ?
		           GROUP BY event_id HAVING max(generation) % 2 = 0)) AS events
		FROM rated_usage FINAL
		WHERE tenant = ? AND customer = ? AND period = ? AND (? = '' OR contract = ?)
		GROUP BY element, currency
		ORDER BY element, currency`, tenantID, customer, tenantID, customer, tenantID, customer, period, contract, contract)
	if err != nil {
		return nil, fmt.Errorf("charges of %s for %s: %w", customer, period, err)
	}
	defer rows.Close()
	resp := &ChargesResponse{Customer: customer, Contract: contract, Period: period, Totals: []Total{}, Lines: []ChargeLine{}}
	totals := map[string]decimal.Decimal{}
	var order []string
	for rows.Next() {
		var element, currency string
		var qty, amount decimal.Decimal
		var events uint64
		if err := rows.Scan(&element, &currency, &qty, &amount, &events); err != nil {
			return nil, err
		}
		resp.Lines = append(resp.Lines, ChargeLine{Element: element, Quantity: qty.String(),
			Amount: formatAmount(currency, amount), Currency: currency, Events: events})
		if _, ok := totals[currency]; !ok {
			order = append(order, currency)
		}
		totals[currency] = totals[currency].Add(amount)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, cur := range order {
		resp.Totals = append(resp.Totals, Total{Currency: cur, Amount: formatAmount(cur, totals[cur])})
	}
	if len(resp.Totals) == 1 {
		resp.Currency, resp.Total = resp.Totals[0].Currency, resp.Totals[0].Amount
	}
	return resp, nil
}

func formatAmount(currency string, d decimal.Decimal) string {
	if c, err := money.LookupCurrency(currency); err == nil {
		return c.Format(d)
	}
	return d.String()
}
