package rater

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
)

func decp(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }

// A monthly fee of 3100 yen, pro-rated by actual days, charged in arrears,
// on a contract that starts on 11 March: March's 21 of 31 days cost 2100,
// due on 31 March; April's full 3100 is due on 30 April.
const fixedCatalogue = `
services: [{code: box, name: Box, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: service}]}]
fees: [{code: base, name: Base, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: fixed, amount: 3100, recurrence: monthly, proration: actual_days, timing: arrears}]}]
plans: [{code: flat, name: Flat, versions: [{valid_from: 2025-01-01T00:00:00Z, type: fixed, currency: JPY, fees: [base]}]}]
basic_contracts:
  - {id: b1, customer: c1, start_date: 2026-03-11, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}
service_contracts:
  - {id: s1, customer: c1, basic_contract: b1, service: box, start_date: 2026-03-11, plans: [{plan: flat, start_date: 2026-03-11}]}
`

func TestFixedFeesEmittedWhenDue(t *testing.T) {
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
	src.set(t, "fx", fixedCatalogue)
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	out := &capture{}
	f := NewFixedFees(src, engines, out, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	tokyo, _ := time.LoadLocation("Asia/Tokyo")

	// 30 March in Tokyo: March's fee is not due yet.
	f.now = func() time.Time { return time.Date(2026, 3, 30, 12, 0, 0, 0, tokyo) }
	if err := f.Emit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(out.msgs) != 0 {
		t.Fatalf("emitted %d lines before they were due", len(out.msgs))
	}
	// 31 March, 00:00 in Tokyo (15:00 UTC the day before): due.
	f.now = func() time.Time { return time.Date(2026, 3, 31, 0, 0, 0, 0, tokyo) }
	if err := f.Emit(ctx); err != nil {
		t.Fatal(err)
	}
	lines := ratedLines(t, out.msgs)
	if len(lines) != 1 || lines[0].Amount.String() != "2100" || lines[0].Period != "2026-03" || lines[0].Event.Customer != "c1" ||
		lines[0].Item != "s1/base" || !strings.HasPrefix(lines[0].Event.ID, fixedPrefix) {
		t.Fatalf("lines = %+v, want March's 2100", lines)
	}
	first := lines[0].LineID
	// Later rounds do not write it again; April's fee follows when due,
	// while March's (the previous period) is still looked at.
	out.msgs = nil
	f.now = func() time.Time { return time.Date(2026, 4, 30, 0, 0, 1, 0, tokyo) }
	if err := f.Emit(ctx); err != nil {
		t.Fatal(err)
	}
	lines = ratedLines(t, out.msgs)
	if len(lines) != 1 || lines[0].Amount.String() != "3100" || lines[0].Period != "2026-04" || lines[0].LineID == first {
		t.Fatalf("lines = %+v, want only April's 3100", lines)
	}
	// A restarted process writes March's and April's again under the same
	// ids: they replace themselves downstream.
	again := NewFixedFees(src, engines, out, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	again.now = f.now
	out.msgs = nil
	if err := again.Emit(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range ratedLines(t, out.msgs) {
		ids[l.LineID] = true
	}
	if len(ids) != 2 || !ids[first] || !ids[lines[0].LineID] {
		t.Fatalf("after a restart: %v", ids)
	}
}

// A fixed fee whose line the store cannot hold (a catalogue stored before
// amounts were bounded: 10^30 yen a month) is not written as a rated line,
// which the aggregator would refuse and retry for ever; it is parked on
// usage.unrated as amount_overflow, once, and the other contracts' fees are
// emitted as usual.
func TestFixedFeeOverflowIsParked(t *testing.T) {
	src := &staticCatalogues{cats: map[string]*catalog.Catalogue{}, vers: map[string]uint64{}, ch: make(chan struct{})}
	c, err := catalog.Decode(strings.NewReader(fixedCatalogue + `
  - {id: s2, customer: c1, basic_contract: b1, service: box, start_date: 2026-03-11, plans: [{plan: huge, start_date: 2026-03-11}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	c.Fees = append(c.Fees, catalog.Fee{Code: "huge", Name: "Huge", Versions: []catalog.FeeVersion{{Validity: c.Fees[0].Versions[0].Validity,
		Kind: catalog.FeeFixed, Amount: decp("1000000000000000000000000000000"), Recurrence: catalog.Monthly, Proration: catalog.ProrateNone, Timing: catalog.Arrears}}})
	c.Plans = append(c.Plans, catalog.Plan{Code: "huge", Name: "Huge", Versions: []catalog.PlanVersion{{Validity: c.Plans[0].Versions[0].Validity,
		Type: catalog.PlanFixed, Currency: "JPY", Fees: []string{"huge"}}}})
	src.cats["fx"], src.vers["fx"] = c, 1 // not validated: the bounds would refuse it now
	engines := NewEngines(src, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	engines.Refresh()
	out := &capture{}
	f := NewFixedFees(src, engines, out, stream.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	f.now = func() time.Time { return time.Date(2026, 3, 31, 0, 0, 0, 0, tokyo) }
	for round := 0; round < 2; round++ {
		out.msgs = nil
		if err := f.Emit(context.Background()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		lines := ratedLines(t, out.msgs)
		var parked []schemas.Unrated
		for _, m := range out.msgs {
			if m.Topic == schemas.TopicUnrated {
				var u schemas.Unrated
				if err := schemas.UnmarshalUnrated(m.Value, &u); err != nil {
					t.Fatal(err)
				}
				parked = append(parked, u)
			}
		}
		if round == 1 {
			if len(out.msgs) != 0 {
				t.Fatalf("round 2 wrote %d messages again", len(out.msgs))
			}
			continue
		}
		if len(lines) != 1 || lines[0].Item != "s1/base" || lines[0].Amount.String() != "2100" {
			t.Errorf("rated lines %+v, want only s1's 2100", lines)
		}
		if len(parked) != 1 || parked[0].ReasonCode != schemas.ReasonOverflow || parked[0].Event.Contract != "s2" ||
			!strings.HasPrefix(parked[0].Event.ID, fixedPrefix) || !strings.Contains(parked[0].Reason, "huge") {
			t.Errorf("parked %+v, want s2's fee as %s", parked, schemas.ReasonOverflow)
		}
	}
}

// usagedb.Records is what the app gives the emitter: it must also be
// StoredLines, or a time-weighted line whose records were all invalidated
// would keep its old amount.
var _ StoredLines = (*usagedb.Records)(nil)
