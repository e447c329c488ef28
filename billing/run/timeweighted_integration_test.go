package run

import (
	"context"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/schemas"
)

// timeWeightedCatalogue: seats priced per seat-day (aggregation
// time_weighted, time_unit day) at 10 JPY, monthly in UTC.
const timeWeightedCatalogue = `
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: JPY, fees: [seats]}]}]
fees:
  - {code: seats, name: Seats, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: seats, rates: [{rate_table: ten}]}]}
elements:
  - {code: seats, name: Seats, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: seat, aggregation: time_weighted, time_unit: day}]}
rate_tables:
  - {code: ten, name: Ten, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 10}]}
basic_contracts:
  - {id: b-tw, customer: c-tw, start_date: "2019-01-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
service_contracts:
  - {id: k-tw, customer: c-tw, basic_contract: b-tw, service: svc, start_date: "2019-03-01", plans: [{plan: p, start_date: "2019-03-01"}]}
`

// streamLevelLines reads the stream's time-weighted period-end lines of a
// tenant from rated_usage FINAL: item → amount, and how many rows FINAL
// keeps.
func (e *env) streamLevelLines(tenant string) (map[string]string, int) {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(),
		"SELECT item, amount FROM rated_usage FINAL WHERE tenant = ? AND position(event_id, '#level:') > 0", tenant)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out, n := map[string]string{}, 0
	for rows.Next() {
		var item string
		var amount = decimalOf("0")
		if err := rows.Scan(&item, &amount); err != nil {
			e.t.Fatal(err)
		}
		out[item] = amount.String()
		n++
	}
	return out, n
}

// TestTimeWeightedStreamEqualsBatch (issue 19 item 4 in the stream): the
// stream's lines of a time-weighted charge are zero; once March has ended
// the rater's fixed-fee emitter writes the charge's period-end amount
// (level 2 from the 11th, 5 from the 21st: 2 × 10 + 5 × 11 = 75 seat-days,
// 750 JPY) under one deterministic id — a restarted emitter writes the
// same — the billing run bills the same amount, and reconciliation shows
// no difference; after an invalidation the emitter replaces the amount
// under the same id (420), and once every level change is invalidated it
// writes the line at zero, the batch agreeing each time.
func TestTimeWeightedStreamEqualsBatch(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const tenant = "seats"
	e.loadYAML(tenant, timeWeightedCatalogue)
	at := func(day int) time.Time { return time.Date(2019, 3, day, 0, 0, 0, 0, time.UTC) }
	rec := func(id, qty string, day int) schemas.UsageEvent {
		return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "c-tw", Contract: "k-tw", Element: "seats",
			Quantity: dec(qty), Time: at(day), ReceivedAt: at(day).Add(time.Second)}
	}
	two, five := rec("two", "2", 11), rec("five", "5", 21)
	e.now = at(22)
	e.storeRecords(two, five)
	e.streamMetered(tenant, []schemas.UsageEvent{two, five})

	// During March nothing is emitted: the level-time is not known yet.
	if got := e.emitPeriodLines(tenant, at(31).Add(23*time.Hour)); len(got) != 0 {
		t.Fatalf("emitted during March: %+v", got)
	}
	e.now = time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC)
	e.emitPeriodLines(tenant, e.now)
	e.emitPeriodLines(tenant, e.now.Add(time.Minute)) // a restarted rater: the same id again
	check := func(when, want string) {
		t.Helper()
		got, rows := e.streamLevelLines(tenant)
		if rows != 1 || got["k-tw/seats"] != want {
			t.Errorf("%s: stream period-end lines %v (%d rows), want k-tw/seats %s once", when, got, rows, want)
		}
		res := e.run(tenant, "2019-03", "job_"+when)
		if res.Differences != 0 {
			t.Errorf("%s: %d reconciliation differences, want 0", when, res.Differences)
		}
		r, err := e.store.Get(ctx, tenant, billing.ReceivableID(tenant, "b-tw", "2019-03"))
		if err != nil || r == nil {
			t.Fatalf("%s: receivable: %v %v", when, r, err)
		}
		if !r.Subtotal.Equal(dec(want)) {
			t.Errorf("%s: receivable subtotal %s, want %s", when, r.Subtotal, want)
		}
	}
	check("first", "750")

	// Invalidate the change to 5: level 2 holds to the end, 2 × 21 = 42
	// seat-days.
	e.now = e.now.Add(time.Hour)
	e.invalidate(five)
	e.emitPeriodLines(tenant, e.now)
	check("invalidated", "420")

	// Invalidate the other too: no record, the line at zero.
	e.now = e.now.Add(time.Hour)
	e.invalidate(two)
	e.emitPeriodLines(tenant, e.now)
	got, rows := e.streamLevelLines(tenant)
	if rows != 1 || got["k-tw/seats"] != "0" {
		t.Errorf("all invalidated: stream period-end lines %v (%d rows), want k-tw/seats 0", got, rows)
	}
	if res := e.run(tenant, "2019-03", "job_none"); res.Differences != 0 {
		t.Errorf("all invalidated: %d reconciliation differences, want 0", res.Differences)
	}
}
