package usagedb

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// Charges.Query reads exact decimal sums per element for one tenant,
// customer and period, formatted in the currency's minor unit, counting a
// redelivered line once.
func TestChargesQuery(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	lines := []schemas.RatedLine{
		// acme / c1 / 2026-03, USD
		line("acme", "c1", "2026-03", "e1", "api_calls", "10", "0.10", "USD"),
		line("acme", "c1", "2026-03", "e2", "api_calls", "20", "0.20", "USD"),
		line("acme", "c1", "2026-03", "e3", "storage", "1.5", "12345678901234567.89", "USD"),
		line("acme", "c1", "2026-03", "e4", "storage", "0.25", "12345678901234567.89", "USD"),
		line("acme", "c1", "2026-03", "e5", "egress", "3", "0.1", "USD"), // stored 0.100000000
		// Same customer, other period; other tenant; other customer.
		line("acme", "c1", "2026-02", "e6", "api_calls", "1", "5.00", "USD"),
		line("other", "c1", "2026-03", "e1", "api_calls", "1", "1.00", "USD"),
		// acme / c2 / 2026-03, JPY
		line("acme", "c2", "2026-03", "j1", "api_calls", "100", "100", "JPY"),
		line("acme", "c2", "2026-03", "j2", "api_calls", "250", "250", "JPY"),
		// acme / c3 / 2026-03, two currencies, and a currency Kakin does not know
		line("acme", "c3", "2026-03", "m1", "api_calls", "1", "1.5", "USD"),
		line("acme", "c3", "2026-03", "m2", "storage", "2", "20", "JPY"),
		line("acme", "c4", "2026-03", "x1", "api_calls", "1", "1.2345", "XTS"),
	}
	var batch []kafka.Message
	for i, l := range lines {
		batch = append(batch, ratedMsg(t, i%3, int64(i), l))
	}
	// The whole batch is delivered twice, and the first line a third time.
	for _, b := range [][]kafka.Message{batch, batch, batch[:1]} {
		if err := stage.HandleBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name                     string
		tenant, customer, period string
		want                     ChargesResponse
	}{
		{"one currency, several elements, exact large sums", "acme", "c1", "2026-03", ChargesResponse{
			Currency: "USD", Total: "24691357802469136.18",
			Totals: []Total{{"USD", "24691357802469136.18"}},
			Lines: []ChargeLine{
				{Element: "api_calls", Quantity: "30", Amount: "0.30", Currency: "USD", Events: 2},
				{Element: "egress", Quantity: "3", Amount: "0.10", Currency: "USD", Events: 1},
				{Element: "storage", Quantity: "1.75", Amount: "24691357802469135.78", Currency: "USD", Events: 2},
			}}},
		{"other period of the same customer", "acme", "c1", "2026-02", ChargesResponse{
			Currency: "USD", Total: "5.00", Totals: []Total{{"USD", "5.00"}},
			Lines: []ChargeLine{{Element: "api_calls", Quantity: "1", Amount: "5.00", Currency: "USD", Events: 1}}}},
		{"same customer id under another tenant", "other", "c1", "2026-03", ChargesResponse{
			Currency: "USD", Total: "1.00", Totals: []Total{{"USD", "1.00"}},
			Lines: []ChargeLine{{Element: "api_calls", Quantity: "1", Amount: "1.00", Currency: "USD", Events: 1}}}},
		{"yen has no minor unit", "acme", "c2", "2026-03", ChargesResponse{
			Currency: "JPY", Total: "350", Totals: []Total{{"JPY", "350"}},
			Lines: []ChargeLine{{Element: "api_calls", Quantity: "350", Amount: "350", Currency: "JPY", Events: 2}}}},
		{"two currencies: a total per currency, no single total", "acme", "c3", "2026-03", ChargesResponse{
			Totals: []Total{{"USD", "1.50"}, {"JPY", "20"}},
			Lines: []ChargeLine{
				{Element: "api_calls", Quantity: "1", Amount: "1.50", Currency: "USD", Events: 1},
				{Element: "storage", Quantity: "2", Amount: "20", Currency: "JPY", Events: 1},
			}}},
		{"unknown currency: the exact amount", "acme", "c4", "2026-03", ChargesResponse{
			Currency: "XTS", Total: "1.2345", Totals: []Total{{"XTS", "1.2345"}},
			Lines: []ChargeLine{{Element: "api_calls", Quantity: "1", Amount: "1.2345", Currency: "XTS", Events: 1}}}},
		{"no usage", "acme", "c9", "2026-03", ChargesResponse{Totals: []Total{}, Lines: []ChargeLine{}}},
		{"other tenant's customer is not visible", "other", "c2", "2026-03", ChargesResponse{Totals: []Total{}, Lines: []ChargeLine{}}},
	}
	charges := NewCharges(conn)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := charges.Query(ctx, tt.tenant, tt.customer, tt.period)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Customer, want.Period = tt.customer, tt.period
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Query(%s, %s, %s) =\n  %s\nwant\n  %s", tt.tenant, tt.customer, tt.period, show(*got), show(want))
			}
		})
	}
}

func show(r ChargesResponse) string {
	return fmt.Sprintf("%+v", r)
}
