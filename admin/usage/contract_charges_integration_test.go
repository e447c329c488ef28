package usage

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/segmentio/kafka-go"
)

// fixedNow is the business clock of the pay-per-use tests: 2026-04-15 in
// Tokyo, so "the current and the previous month" are 2026-04 and 2026-03
// whatever day the tests run on.
func fixedNow() time.Time { return time.Date(2026, 4, 15, 1, 0, 0, 0, time.UTC) }

// fakeCatalogue stands in for the catalogue replica: entities by tenant,
// kind and id.
type fakeCatalogue map[entityKey]catalogstore.Entity

type entityKey struct {
	tenant string
	kind   catalogstore.Kind
	id     string
}

func (f fakeCatalogue) Get(tenant string, k catalogstore.Kind, id string) (catalogstore.Entity, bool) {
	e, ok := f[entityKey{tenant, k, id}]
	return e, ok
}

func day(s string) catalog.Date {
	d, err := catalog.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func datePtr(s string) *catalog.Date { d := day(s); return &d }

var testCatalogue = fakeCatalogue{
	{"acme", catalogstore.KindBasicContract, "b-1"}: {ID: "b-1", Value: &catalog.BasicContract{ID: "b-1", Customer: "c1", Currency: "JPY", TimeZone: "Asia/Tokyo"}},
	// Started and ends mid-month.
	{"acme", catalogstore.KindServiceContract, "sc-1"}: {ID: "sc-1", Value: &catalog.ServiceContract{ID: "sc-1", Customer: "c1", Basic: "b-1", Service: "flex",
		DateRange: catalog.DateRange{Start: day("2026-03-10"), End: datePtr("2026-04-20")}}},
	{"acme", catalogstore.KindServiceContract, "sc-2"}: {ID: "sc-2", Value: &catalog.ServiceContract{ID: "sc-2", Customer: "c1", Basic: "b-1", Service: "flex",
		DateRange: catalog.DateRange{Start: day("2026-01-01")}}},
	{"acme", catalogstore.KindServiceContract, "sc-gone"}: {ID: "sc-gone", Deleted: true, Value: &catalog.ServiceContract{ID: "sc-gone", Customer: "c1", Basic: "b-1"}},
	{"acme", catalogstore.KindFee, "bw"}: {ID: "bw", Value: &catalog.Fee{Code: "bw", Versions: []catalog.FeeVersion{{
		Validity: catalog.Validity{ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}, SplitBy: []string{"bandwidth"}}}}},
	{"other", catalogstore.KindBasicContract, "b-9"}:    {ID: "b-9", Value: &catalog.BasicContract{ID: "b-9", Customer: "c1", Currency: "JPY", TimeZone: "UTC"}},
	{"other", catalogstore.KindServiceContract, "sc-9"}: {ID: "sc-9", Value: &catalog.ServiceContract{ID: "sc-9", Customer: "c1", Basic: "b-9", Service: "flex", DateRange: catalog.DateRange{Start: day("2026-01-01")}}},
}

// contractLine is a rated line of a contract as the rater writes it: item
// contract/fee[split], the event's contract set.
func contractLine(tenant, customer, contract, period, eventID, element, item, qty, amount string, at time.Time) schemas.RatedLine {
	return schemas.RatedLine{
		LineID: schemas.LineID(tenant, eventID, item),
		Event: schemas.UsageEvent{Tenant: tenant, ID: eventID, Customer: customer, Element: element, Contract: contract,
			Quantity: dec(qty), Time: at, ReceivedAt: at.Add(time.Second)},
		Item: item, Amount: dec(amount), Currency: "JPY", Period: period, RatedAt: at.Add(2 * time.Second),
	}
}

func seedContractLines(t *testing.T) http.Handler {
	t.Helper()
	conn := newDB(t)
	mar := time.Date(2026, 3, 12, 3, 0, 0, 0, time.UTC)
	fixed := contractLine("acme", "c1", "sc-1", "2026-03", "fixed:sc-1:2026-03:plan-a:base:2026-03-10", "base", "sc-1/base", "1", "1000",
		time.Date(2026, 3, 9, 15, 0, 0, 0, time.UTC))
	e2 := contractLine("acme", "c1", "sc-1", "2026-03", "e2", "traffic", "sc-1/bw[500]", "5", "50", mar.Add(time.Hour))
	invalidated := e2
	invalidated.LineID = schemas.CorrectionLineID("acme", "e2", e2.Item, schemas.ActionInvalidate, 1)
	invalidated.Event.Quantity, invalidated.Amount = dec("-5"), dec("-50")
	e3 := contractLine("acme", "c1", "sc-1", "2026-03", "e3", "traffic", "sc-1/bw[1000]", "1", "30", mar.Add(2*time.Hour))
	rerated := e3 // a re-rate: the same line, a higher version, another amount
	rerated.Amount, rerated.RatedAt = dec("35"), e3.RatedAt.Add(time.Hour)
	lines := []schemas.RatedLine{
		fixed, e3, rerated,
		contractLine("acme", "c1", "sc-1", "2026-03", "e1", "traffic", "sc-1/bw[500]", "10", "100", mar),
		e2, invalidated,
		contractLine("acme", "c1", "sc-1", "2026-04", "e4", "traffic", "sc-1/bw[500]", "2", "20", mar.AddDate(0, 1, 0)),
		// The customer's other contract, and the same ids under another tenant.
		contractLine("acme", "c1", "sc-2", "2026-03", "e5", "traffic", "sc-2/bw[500]", "7", "7", mar),
		contractLine("other", "c1", "sc-1", "2026-03", "e1", "traffic", "sc-1/bw[500]", "999", "999", mar),
	}
	var batch []kafka.Message
	for i, l := range lines {
		batch = append(batch, ratedMsg(t, i%2, int64(i), l))
	}
	// Delivered twice: each line counts once.
	for range 2 {
		if err := newStage(conn).HandleBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	return readAPI(conn)
}

func TestContractCharges(t *testing.T) {
	h := seedContractLines(t)
	march := ContractChargeMonth{Month: "202603", Period: "2026-03", PeriodStart: "2026-03-01", PeriodEnd: "2026-03-31", Result: MonthOK,
		Items: []ContractChargeItem{
			{BillItem: "base", BillItemCode: "0", Item: "sc-1/base", Fee: "base", Element: "base", Attributes: map[string]string{},
				Quantity: "1", Amount: "1000", Currency: "JPY", Lines: 1, EffectiveDate: "2026-03-10", TerminationDate: "2026-03-31"},
			{BillItem: "additional", BillItemCode: "1", Item: "sc-1/bw[1000]", Fee: "bw", Element: "traffic", Attributes: map[string]string{"bandwidth": "1000"},
				Quantity: "1", Amount: "35", Currency: "JPY", Lines: 1, EffectiveDate: "2026-03-10", TerminationDate: "2026-03-31",
				FirstUsageAt: ptr(time.Date(2026, 3, 12, 5, 0, 0, 0, time.UTC)), LastUsageAt: ptr(time.Date(2026, 3, 12, 5, 0, 0, 0, time.UTC))},
			// e2 and its invalidation net to nothing; three lines summed.
			{BillItem: "additional", BillItemCode: "1", Item: "sc-1/bw[500]", Fee: "bw", Element: "traffic", Attributes: map[string]string{"bandwidth": "500"},
				Quantity: "10", Amount: "100", Currency: "JPY", Lines: 3, EffectiveDate: "2026-03-10", TerminationDate: "2026-03-31",
				FirstUsageAt: ptr(time.Date(2026, 3, 12, 3, 0, 0, 0, time.UTC)), LastUsageAt: ptr(time.Date(2026, 3, 12, 4, 0, 0, 0, time.UTC))},
		},
		Totals: []usagedb.Total{{Currency: "JPY", Amount: "1135"}}, Currency: "JPY", Total: "1135"}
	april := ContractChargeMonth{Month: "202604", Period: "2026-04", PeriodStart: "2026-04-01", PeriodEnd: "2026-04-30", Result: MonthOK,
		Items: []ContractChargeItem{
			{BillItem: "additional", BillItemCode: "1", Item: "sc-1/bw[500]", Fee: "bw", Element: "traffic", Attributes: map[string]string{"bandwidth": "500"},
				Quantity: "2", Amount: "20", Currency: "JPY", Lines: 1, EffectiveDate: "2026-04-01", TerminationDate: "2026-04-20",
				FirstUsageAt: ptr(time.Date(2026, 4, 12, 3, 0, 0, 0, time.UTC)), LastUsageAt: ptr(time.Date(2026, 4, 12, 3, 0, 0, 0, time.UTC))},
		},
		Totals: []usagedb.Total{{Currency: "JPY", Amount: "20"}}, Currency: "JPY", Total: "20"}
	noData := func(m, p, start, end string) ContractChargeMonth {
		return ContractChargeMonth{Month: m, Period: p, PeriodStart: start, PeriodEnd: end, Result: MonthNoData,
			Items: []ContractChargeItem{}, Totals: []usagedb.Total{}}
	}
	sc1 := func(months ...ContractChargeMonth) ContractChargesResponse {
		return ContractChargesResponse{Contract: "sc-1", Customer: "c1", Service: "flex", Months: months}
	}
	tests := []struct {
		name, target string
		want         ContractChargesResponse
	}{
		{"one month: fixed and metered items, split attributes, mid-month start, the re-rated amount", "/v1/service-contracts/sc-1/charges?month=202603", sc1(march)},
		{"without month: the previous and the current month of the business clock", "/v1/service-contracts/sc-1/charges", sc1(march, april)},
		{"a month without lines is no_data, not 404", "/v1/service-contracts/sc-1/charges?month=202602", sc1(noData("202602", "2026-02", "2026-02-01", "2026-02-28"))},
		{"the customer's other contract has its own lines", "/v1/service-contracts/sc-2/charges?month=202603", ContractChargesResponse{
			Contract: "sc-2", Customer: "c1", Service: "flex", Months: []ContractChargeMonth{{Month: "202603", Period: "2026-03",
				PeriodStart: "2026-03-01", PeriodEnd: "2026-03-31", Result: MonthOK,
				Items: []ContractChargeItem{{BillItem: "additional", BillItemCode: "1", Item: "sc-2/bw[500]", Fee: "bw", Element: "traffic",
					Attributes: map[string]string{"bandwidth": "500"}, Quantity: "7", Amount: "7", Currency: "JPY", Lines: 1,
					EffectiveDate: "2026-03-01", TerminationDate: "2026-03-31",
					FirstUsageAt: ptr(time.Date(2026, 3, 12, 3, 0, 0, 0, time.UTC)), LastUsageAt: ptr(time.Date(2026, 3, 12, 3, 0, 0, 0, time.UTC))}},
				Totals: []usagedb.Total{{Currency: "JPY", Amount: "7"}}, Currency: "JPY", Total: "7"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, h, "", tt.target)
			if status != 200 {
				t.Fatalf("%s: %d %s", tt.target, status, body)
			}
			var got ContractChargesResponse
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s:\n got %s\nwant %s", tt.target, body, mustJSON(t, tt.want))
			}
		})
	}
}

func TestContractChargesErrors(t *testing.T) {
	h := seedContractLines(t)
	tests := []struct {
		name, target string
		status       int
		code, field  string
	}{
		{"bad month names the format", "/v1/service-contracts/sc-1/charges?month=2026-03", 400, "invalid_query", "month"},
		{"month 13", "/v1/service-contracts/sc-1/charges?month=202613", 400, "invalid_query", "month"},
		{"empty month", "/v1/service-contracts/sc-1/charges?month=", 400, "invalid_query", "month"},
		{"unknown parameter", "/v1/service-contracts/sc-1/charges?serviceName=flex", 400, "invalid_query", "serviceName"},
		{"no such contract", "/v1/service-contracts/sc-404/charges?month=202603", 404, "not_found", ""},
		{"a deleted contract", "/v1/service-contracts/sc-gone/charges", 404, "not_found", ""},
		{"another tenant's contract", "/v1/service-contracts/sc-9/charges", 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, h, "", tt.target)
			var p httpapi.Problem
			if err := json.Unmarshal(body, &p); err != nil || status != tt.status || p.Code != tt.code {
				t.Fatalf("%s: %d %s, want %d %s", tt.target, status, body, tt.status, tt.code)
			}
			if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
				t.Errorf("%s: errors %+v, want one naming %s", tt.target, p.Errors, tt.field)
			}
			if tt.field == "month" && p.Errors[0].Reason != "must be a month as YYYYMM (six digits, e.g. 202603)" {
				t.Errorf("reason %q does not name the format", p.Errors[0].Reason)
			}
		})
	}
}

// GET /v1/charges?contract= narrows the customer's charges to one
// contract instead of answering the customer's whole total.
func TestChargesContractFilter(t *testing.T) {
	h := seedContractLines(t)
	for _, tt := range []struct{ query, total string }{
		{"customer=c1&period=2026-03", "1142"},
		{"customer=c1&period=2026-03&contract=sc-1", "1135"},
		{"customer=c1&period=2026-03&contract=sc-2", "7"},
	} {
		status, body := get(t, h, "", "/v1/charges?"+tt.query)
		var got usagedb.ChargesResponse
		if err := json.Unmarshal(body, &got); err != nil || status != 200 {
			t.Fatalf("%s: %d %s", tt.query, status, body)
		}
		if got.Total != tt.total {
			t.Errorf("%s: total %q, want %q", tt.query, got.Total, tt.total)
		}
	}
	// A contract of no lines answers nothing, not the customer's total.
	status, body := get(t, h, "", "/v1/charges?customer=c1&period=2026-03&contract=sc-404")
	var got usagedb.ChargesResponse
	if err := json.Unmarshal(body, &got); err != nil || status != 200 || len(got.Lines) != 0 || got.Total != "" {
		t.Errorf("unknown contract: %d %s, want no lines", status, body)
	}
	if status, _ := get(t, h, "", "/v1/charges?customer=c1&period=2026-03&contract="); status != 400 {
		t.Errorf("empty contract: %d, want 400", status)
	}
}

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A time-weighted charge's period-end line (the rater's fixed-fee emitter
// writes it under a fixed: id once the period ended) is a metered amount
// (加算額), not a base amount: its records' lines are zero, the level-time
// line carries the amount.
func TestContractChargesTimeWeightedIsAdditional(t *testing.T) {
	conn := newDB(t)
	at := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	lines := []schemas.RatedLine{
		contractLine("acme", "c1", "sc-2", "2026-03", "s1", "seats", "sc-2/seats", "2", "0", at),
		contractLine("acme", "c1", "sc-2", "2026-03", "fixed:sc-2:2026-03:p:seats#level:ten", "seats#level", "sc-2/seats", "42", "420",
			time.Date(2026, 3, 30, 15, 0, 0, 0, time.UTC)),
	}
	var batch []kafka.Message
	for i, l := range lines {
		batch = append(batch, ratedMsg(t, 0, int64(i), l))
	}
	if err := newStage(conn).HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	status, body := get(t, readAPI(conn), "", "/v1/service-contracts/sc-2/charges?month=202603")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var got ContractChargesResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Months) != 1 || got.Months[0].Total != "420" || len(got.Months[0].Items) != 2 {
		t.Fatalf("got %s", body)
	}
	for _, it := range got.Months[0].Items {
		if it.BillItem != BillItemAdditional {
			t.Errorf("item %s (element %s): %s, want additional", it.Item, it.Element, it.BillItem)
		}
	}
}
