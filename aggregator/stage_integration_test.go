package aggregator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// A batch of rated lines, duplicates and unrated records lands in the three
// tables with its fields; handing the same batch again (a redelivery) leaves
// every FINAL read unchanged.
func TestHandleBatchInsertsAndRedeliveryIsIdempotent(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	l1 := line("acme", "c1", "2026-03", "e1", "api_calls", "3", "0.03", "USD")
	l2 := line("acme", "c1", "2026-03", "e2", "storage", "1.5", "12345678901234567.89", "USD")
	l3 := line("acme", "c2", "2026-03", "e3", "api_calls", "7", "700", "JPY")
	batch := []kafka.Message{
		ratedMsg(t, 0, 10, l1),
		dupMsg(t, 1, 20, duplicate("acme", "e1", 2, 30, 0, 5, true)),
		ratedMsg(t, 1, 11, l2),
		unratedMsg(t, 2, 40, unrated("acme", "e9", schemas.ReasonUnknownCustomer)),
		dupMsg(t, 1, 21, duplicate("acme", "e1", 2, 31, 0, 5, false)),
		ratedMsg(t, 2, 12, l3),
		unratedMsg(t, 0, 41, unrated("acme", "e10", schemas.ReasonUnknownElement)),
		{Topic: schemas.TopicRated, Partition: 3, Offset: 99, Value: []byte("{oops"), Time: march},
	}
	want := tableState{Rated: 3, Amount: dec("12345678901235267.92"), Duplicates: 2, Unrated: 3}

	// No background merges: the redelivered rows must stay visible
	// without FINAL, so that FINAL is what hides them.
	for _, table := range []string{"rated_usage", "usage_duplicates", "usage_unrated"} {
		if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+table); err != nil {
			t.Fatalf("stop merges on %s: %v", table, err)
		}
	}
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got := state(t, conn); !got.equal(want) {
		t.Fatalf("after the batch: %v, want %v", got, want)
	}

	// The stored row carries the line's fields exactly.
	var (
		tenant, period, customer, eventID, element, item, currency string
		qty, price, amount                                         decimal.Decimal
		eventTime, ratedAt                                         time.Time
		version                                                    uint64
	)
	err := conn.QueryRow(ctx, `SELECT tenant, period, customer, event_id, element, item, currency,
		quantity, unit_price, amount, event_time, rated_at, version
		FROM rated_usage FINAL WHERE line_id = ?`, l2.LineID).Scan(&tenant, &period, &customer, &eventID,
		&element, &item, &currency, &qty, &price, &amount, &eventTime, &ratedAt, &version)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != "acme" || period != "2026-03" || customer != "c1" || eventID != "e2" || element != "storage" ||
		item != "storage" || currency != "USD" || !qty.Equal(dec("1.5")) || !price.Equal(dec("0.01")) ||
		!amount.Equal(l2.Amount) || !eventTime.Equal(march) || !ratedAt.Equal(ratedTime) ||
		version != uint64(ratedTime.UnixNano()) {
		t.Errorf("stored line = %s %s %s %s %s %s %s %s %s %s %v %v %d; want the fields of %+v", tenant, period, customer,
			eventID, element, item, currency, qty, price, amount, eventTime, ratedAt, version, l2)
	}
	var rawP int32
	var rawO, firstO int64
	var differs uint8
	err = conn.QueryRow(ctx, `SELECT raw_partition, raw_offset, first_offset, payload_differs
		FROM usage_duplicates FINAL WHERE raw_offset = 30`).Scan(&rawP, &rawO, &firstO, &differs)
	if err != nil {
		t.Fatal(err)
	}
	if rawP != 2 || rawO != 30 || firstO != 5 || differs != 1 {
		t.Errorf("stored duplicate = %d/%d first %d differs %d, want 2/30 first 5 differs 1", rawP, rawO, firstO, differs)
	}
	var reason string
	if err := conn.QueryRow(ctx, `SELECT reason_code FROM usage_unrated FINAL WHERE event_id = 'e9'`).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if reason != schemas.ReasonUnknownCustomer {
		t.Errorf("stored unrated reason %q, want %q", reason, schemas.ReasonUnknownCustomer)
	}

	// Redelivered twice, once whole and once in other batches.
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := stage.HandleBatch(ctx, batch[:3]); err != nil {
		t.Fatal(err)
	}
	if err := stage.HandleBatch(ctx, batch[3:]); err != nil {
		t.Fatal(err)
	}
	if got := state(t, conn); !got.equal(want) {
		t.Errorf("after redeliveries: %v, want unchanged %v", got, want)
	}
	// Every delivery was written (3 times each row), FINAL reads them once.
	if got, want := rawCounts(t, conn), [3]uint64{9, 6, 9}; got != want {
		t.Errorf("rows stored without FINAL: %v, want %v", got, want)
	}
}

// A re-rate (same line id, later RatedAt) replaces the line's amount; a
// late redelivery of the older rating does not bring it back.
func TestHandleBatchReRateReplacesTheLine(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	v1 := line("acme", "c1", "2026-03", "e1", "api_calls", "10", "10.00", "USD")
	other := line("acme", "c1", "2026-03", "e2", "api_calls", "1", "1.00", "USD")
	v2 := v1
	v2.UnitPrice, v2.Amount, v2.RatedAt = dec("1.234"), dec("12.34"), v1.RatedAt.Add(time.Nanosecond)
	v3 := v1
	v3.Amount, v3.RatedAt = dec("9.99"), v1.RatedAt.Add(24*time.Hour)

	steps := []struct {
		name   string
		lines  []schemas.RatedLine
		amount string // of line e1, in FINAL reads
	}{
		{"first rating", []schemas.RatedLine{v1, other}, "10.00"},
		{"re-rated a nanosecond later", []schemas.RatedLine{v2}, "12.34"},
		{"the older rating redelivered", []schemas.RatedLine{v1}, "12.34"},
		{"re-rated a day later, older one in the same batch after it", []schemas.RatedLine{v3, v1}, "9.99"},
	}
	for i, st := range steps {
		var batch []kafka.Message
		for j, l := range st.lines {
			batch = append(batch, ratedMsg(t, 0, int64(10*i+j), l))
		}
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var n uint64
		var amount decimal.Decimal
		if err := conn.QueryRow(ctx, "SELECT count(), sum(amount) FROM rated_usage FINAL WHERE line_id = ?", v1.LineID).Scan(&n, &amount); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !amount.Equal(dec(st.amount)) {
			t.Errorf("%s: line %s read %d rows, amount %s; want 1 row, %s", st.name, v1.LineID, n, amount, st.amount)
		}
		resp, err := usagedb.NewCharges(conn).Query(ctx, "acme", "c1", "2026-03")
		if err != nil {
			t.Fatal(err)
		}
		if want := dec(st.amount).Add(dec("1")).StringFixed(2); resp.Total != want || len(resp.Lines) != 1 || resp.Lines[0].Events != 2 {
			t.Errorf("%s: charges total %s, lines %+v; want %s over 2 events", st.name, resp.Total, resp.Lines, want)
		}
	}
}

// A record that does not decode is kept as an unrated row with reason
// malformed_record and its raw text, whatever topic it came on, and a
// redelivery of it is stored once.
func TestHandleBatchMalformedRecords(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	received := time.Date(2026, 3, 1, 0, 0, 7, 0, time.UTC)
	tests := []struct {
		name  string
		msg   kafka.Message
		errIn string // expected in the reason
	}{
		{"not JSON on usage.rated",
			kafka.Message{Topic: schemas.TopicRated, Partition: 4, Offset: 77, Value: []byte(`{not json`), Time: received},
			"invalid character"},
		{"amount not a number on usage.rated",
			kafka.Message{Topic: schemas.TopicRated, Partition: 4, Offset: 78, Value: []byte(`{"line_id":"x","amount":"ten"}`), Time: received},
			"decimal"},
		{"truncated on usage.duplicates",
			kafka.Message{Topic: schemas.TopicDuplicates, Partition: 0, Offset: 5, Value: []byte(`{"event":{"tenant":"a"`), Time: received},
			"unexpected end of JSON input"},
		{"wrong type on usage.unrated",
			kafka.Message{Topic: schemas.TopicUnrated, Partition: 1, Offset: 6, Value: []byte(`["a"]`), Time: received},
			"cannot unmarshal array"},
		{"record of an unexpected topic",
			kafka.Message{Topic: "usage.other", Partition: 2, Offset: 8, Value: []byte(`{}`), Time: received},
			"unexpected topic"},
	}
	var batch []kafka.Message
	for _, tt := range tests {
		batch = append(batch, tt.msg)
	}
	for round := range 2 { // the second round is a redelivery
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, tt := range tests {
			id := tt.msg.Topic + ":" + itoa(tt.msg.Partition) + ":" + itoa(int(tt.msg.Offset))
			rows, err := conn.Query(ctx, `SELECT tenant, reason_code, reason, stage, raw, received_at, event_time
				FROM usage_unrated FINAL WHERE event_id = ?`, id)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
				var tenant, code, reason, stageName, raw string
				var recv, evTime time.Time
				if err := rows.Scan(&tenant, &code, &reason, &stageName, &raw, &recv, &evTime); err != nil {
					t.Fatal(err)
				}
				if code != schemas.ReasonMalformed || raw != string(tt.msg.Value) || stageName != StageName ||
					!strings.Contains(reason, tt.errIn) || !recv.Equal(received) || evTime.Unix() != 0 {
					t.Errorf("%s: row %q %q %q raw %q received %v event time %v; want %s by %s, raw %q, received %v, event time the epoch",
						tt.name, tenant, code, reason, raw, recv, evTime, schemas.ReasonMalformed, StageName, tt.msg.Value, received)
				}
			}
			rows.Close()
			if n != 1 {
				t.Errorf("%s (round %d): %d unrated rows for %s, want 1", tt.name, round, n, id)
			}
		}
		if got := state(t, conn); got.Rated != 0 || got.Duplicates != 0 || got.Unrated != uint64(len(tests)) {
			t.Errorf("round %d: %v; want only %d unrated rows", round, got, len(tests))
		}
	}
}

func itoa(i int) string { return decimal.NewFromInt(int64(i)).String() }

// Values ClickHouse would silently truncate (more than 9 fraction digits) or
// that do not fit Decimal(38, 9) make the batch fail with nothing of it
// inserted; values at the limits go in exactly. After a refused batch the
// stage still inserts.
func TestHandleBatchRefusesValuesClickHouseWouldCorrupt(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	good := line("acme", "c1", "2026-03", "good", "api_calls", "1", "1.00", "USD")
	withLine := func(f func(l *schemas.RatedLine)) schemas.RatedLine {
		l := line("acme", "c1", "2026-03", "bad", "api_calls", "1", "1.00", "USD")
		f(&l)
		return l
	}
	dupQty := duplicate("acme", "d1", 0, 1, 0, 0, false)
	dupQty.Event.Quantity = dec("0.0000000001")
	unratedQty := unrated("acme", "u1", schemas.ReasonUnknownCustomer)
	unratedQty.Event.Quantity = dec("1.1234567891")
	tests := []struct {
		name  string
		batch []kafka.Message
		field string // named in the error
	}{
		{"amount with 10 decimal places", []kafka.Message{
			ratedMsg(t, 0, 1, good),
			ratedMsg(t, 0, 2, withLine(func(l *schemas.RatedLine) { l.Amount = dec("0.1234567891") })),
			dupMsg(t, 0, 3, duplicate("acme", "d0", 0, 3, 0, 0, false)),
			unratedMsg(t, 0, 4, unrated("acme", "u0", schemas.ReasonUnknownCustomer)),
		}, "amount"},
		{"unit price with 10 decimal places", []kafka.Message{
			ratedMsg(t, 0, 1, good),
			ratedMsg(t, 0, 2, withLine(func(l *schemas.RatedLine) { l.UnitPrice = dec("0.0000000001") })),
		}, "unit_price"},
		{"quantity with 12 decimal places", []kafka.Message{
			ratedMsg(t, 0, 2, withLine(func(l *schemas.RatedLine) { l.Event.Quantity = dec("3.000000000001") })),
			ratedMsg(t, 0, 1, good),
		}, "quantity"},
		{"amount of 29 integer digits", []kafka.Message{
			ratedMsg(t, 0, 1, good),
			ratedMsg(t, 0, 2, withLine(func(l *schemas.RatedLine) { l.Amount = dec("10000000000000000000000000000") })),
		}, "amount"},
		{"negative amount of 29 integer digits", []kafka.Message{
			ratedMsg(t, 0, 2, withLine(func(l *schemas.RatedLine) { l.Amount = dec("-12345678901234567890123456789") })),
		}, "amount"},
		{"duplicate quantity with 10 decimal places", []kafka.Message{dupMsg(t, 0, 1, dupQty)}, "quantity"},
		{"unrated quantity with 10 decimal places", []kafka.Message{unratedMsg(t, 0, 1, unratedQty)}, "quantity"},
	}
	empty := tableState{Amount: decimal.Zero}
	for _, tt := range tests {
		err := stage.HandleBatch(ctx, tt.batch)
		if err == nil {
			t.Errorf("%s: HandleBatch returned nil, want an error", tt.name)
		} else if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: error %q does not name %s", tt.name, err, tt.field)
		}
		if got := state(t, conn); !got.equal(empty) {
			t.Errorf("%s: refused batch left %v; want nothing inserted", tt.name, got)
		}
		if got := rawCounts(t, conn); got != [3]uint64{} {
			t.Errorf("%s: refused batch stored rows %v; want none", tt.name, got)
		}
	}

	// At the limits: 9 fraction digits, 28 integer digits, exactly.
	limits := []string{"0.123456789", "9999999999999999999999999999.999999999", "-9999999999999999999999999999.999999999", "0.000000001"}
	var batch []kafka.Message
	for i, a := range limits {
		l := line("acme", "c-limits", "2026-03", "lim"+itoa(i), "api_calls", a, a, "USD")
		l.UnitPrice = dec(a)
		batch = append(batch, ratedMsg(t, 1, int64(i), l))
	}
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatalf("values at the limits refused: %v", err)
	}
	for i, a := range limits {
		var qty, price, amount decimal.Decimal
		err := conn.QueryRow(ctx, "SELECT quantity, unit_price, amount FROM rated_usage FINAL WHERE line_id = ?",
			schemas.LineID("acme", "lim"+itoa(i), "api_calls")).Scan(&qty, &price, &amount)
		if err != nil {
			t.Fatal(err)
		}
		if want := dec(a); !qty.Equal(want) || !price.Equal(want) || !amount.Equal(want) {
			t.Errorf("stored %s / %s / %s, want %s exactly", qty, price, amount, a)
		}
	}
}

// Zero and pre-1970 times (a malformed record's unknown times) are stored as
// the epoch instead of failing the insert.
func TestHandleBatchZeroTimes(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	u := schemas.Unrated{ReasonCode: schemas.ReasonMalformed, Reason: "record is not a usage event", Stage: "dedupe",
		Raw: "garbage", At: ratedTime}
	u.Event.ID = "raw:0:1"
	d := schemas.Duplicate{Event: schemas.UsageEvent{Tenant: "acme", ID: "z", Quantity: dec("1")}}
	l := line("acme", "c1", "2026-03", "z", "api_calls", "1", "1", "JPY")
	l.Event.Time, l.Event.ReceivedAt = time.Time{}, time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)
	batch := []kafka.Message{
		{Topic: schemas.TopicUnrated, Value: jsonValue(t, &u)},                             // zero message time too
		{Topic: schemas.TopicDuplicates, Partition: 1, Offset: 2, Value: jsonValue(t, &d)}, // every time zero
		{Topic: schemas.TopicRated, Partition: 1, Offset: 3, Value: jsonValue(t, &l)},
		{Topic: schemas.TopicRated, Partition: 1, Offset: 4, Value: []byte("x")}, // malformed, zero message time
	}
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatalf("HandleBatch with zero times: %v", err)
	}
	if got := state(t, conn); got.Rated != 1 || got.Duplicates != 1 || got.Unrated != 2 {
		t.Fatalf("%v; want 1 rated, 1 duplicate, 2 unrated", got)
	}
	for _, q := range []string{
		"SELECT max(toUInt32(event_time)) + max(toUInt32(received_at)) FROM usage_unrated FINAL",
		"SELECT max(toUInt32(event_time)) + max(toUInt32(received_at)) + max(toUInt32(first_received_at)) + max(toUInt32(detected_at)) FROM usage_duplicates FINAL",
		"SELECT max(toUInt32(event_time)) + max(toUInt32(received_at)) FROM rated_usage FINAL",
	} {
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != 0 {
			t.Errorf("%s = %d, want 0 (the epoch)", q, n)
		}
	}
}

// A record that decodes but names nothing (no tenant, no id) is malformed
// like one that does not decode: it goes to usage_unrated with its raw text
// and never into rated_usage or usage_duplicates.
//
// TestHandleBatchEmptyRecordsAreMalformed: a record that decodes but lacks
// its keys (`{}`, `null`, a line without a tenant) is parked as malformed in
// usage_unrated, never stored as data with empty keys.
func TestHandleBatchEmptyRecordsAreMalformed(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	batch := []kafka.Message{
		{Topic: schemas.TopicRated, Partition: 0, Offset: 1, Value: []byte(`{}`), Time: march},
		{Topic: schemas.TopicRated, Partition: 0, Offset: 2, Value: []byte(`null`), Time: march},
		{Topic: schemas.TopicRated, Partition: 0, Offset: 3, Value: []byte(`{"line_id":"x","amount":"5"}`), Time: march},
		{Topic: schemas.TopicDuplicates, Partition: 0, Offset: 4, Value: []byte(`{}`), Time: march},
		{Topic: schemas.TopicUnrated, Partition: 0, Offset: 5, Value: []byte(`{}`), Time: march},
	}
	if err := stage.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := state(t, conn); got.Rated != 0 || got.Duplicates != 0 || got.Unrated != uint64(len(batch)) {
		t.Errorf("%v; want %d unrated (malformed) rows and nothing else", got, len(batch))
	}
}
