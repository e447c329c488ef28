package aggregator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/segmentio/kafka-go"
)

// record is a usage event as it arrives on usage.accepted.
func record(tenant, id, customer, element, contract string, minutes int) schemas.UsageEvent {
	return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Element: element, Contract: contract,
		Quantity: dec("1.5"), Time: march.Add(time.Duration(minutes)*time.Minute + 987654321),
		ReceivedAt: march.Add(time.Hour + time.Duration(minutes)*time.Minute + 5), Attributes: map[string]string{"region": "jp", "a": "1"}}
}

func acceptedMsg(t testing.TB, p int, o int64, ev schemas.UsageEvent) kafka.Message {
	return kafka.Message{Topic: schemas.TopicAccepted, Partition: p, Offset: o, Value: jsonValue(t, &ev), Time: ev.ReceivedAt}
}

// TestRecordsStoredOnce: every accepted record is stored once with its exact
// times, attributes and position in usage.accepted, also when redelivered;
// corrections and unreadable messages on usage.accepted are not records.
func TestRecordsStoredOnce(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	ev := record("acme", "e1", "c1", "api_calls", "k-1", 0)
	corr := schemas.Correction{Action: schemas.ActionInvalidate, Generation: 1, Event: ev}
	batch := []kafka.Message{
		acceptedMsg(t, 2, 40, ev),
		{Topic: schemas.TopicAccepted, Partition: 2, Offset: 41, Value: jsonValue(t, &corr), Headers: schemas.CorrectionHeaders(), Time: march},
		{Topic: schemas.TopicAccepted, Partition: 2, Offset: 42, Value: []byte("not json"), Time: march},
		acceptedMsg(t, 1, 7, record("acme", "e2", "c2", "storage", "", 1)),
	}
	for range 3 {
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	r := usagedb.NewRecords(conn)
	got, err := r.Events(ctx, "acme", usagedb.RecordFilter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d records stored, want 2: %+v", len(got), got)
	}
	e := got[0]
	if e.ID != "e1" || e.Tenant != "acme" || e.Contract != "k-1" || !e.Quantity.Equal(ev.Quantity) || !e.Time.Equal(ev.Time) ||
		!e.ReceivedAt.Equal(ev.ReceivedAt) || fmt.Sprint(e.Attributes) != fmt.Sprint(ev.Attributes) {
		t.Errorf("stored %+v\nwant    %+v", e, ev)
	}
	if schemas.PayloadHash(&e) != schemas.PayloadHash(&ev) {
		t.Error("the rebuilt event's payload differs from the accepted one")
	}
	var p int32
	var o int64
	if err := conn.QueryRow(ctx, "SELECT accepted_partition, accepted_offset FROM usage_records FINAL WHERE event_id = 'e1'").Scan(&p, &o); err != nil || p != 2 || o != 40 {
		t.Errorf("position %d/%d %v, want 2/40", p, o, err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM usage_unrated").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d unrated rows, %v: the rater, not the aggregator, parks unreadable accepted records", n, err)
	}
}

// TestRecordsCarriedByOutcomes: the rater's first output of a usage record
// (its first rated line, or the record parked unrated) carries the record,
// and the aggregator stores it in usage_records with the contract the record
// named (not the line's, priced under) and its usage.accepted position;
// other lines, corrections' lines and parked records without a record
// (malformed messages) add no record row.
func TestRecordsCarriedByOutcomes(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	ev := record("acme", "e1", "c1", "api_calls", "", 0)
	first := line("acme", "c1", "2026-03", "e1", "api_calls", "1.5", "3", "JPY")
	first.Event = ev
	first.Event.Contract = "k-1" // priced under k-1; the record named none
	first.Record = &schemas.RecordOrigin{Partition: 3, Offset: 70}
	second := first
	second.LineID, second.Item, second.Record = schemas.LineID("acme", "e1", "k-1/other"), "k-1/other", nil
	parked := record("acme", "e2", "c2", "storage", "k-9", 1)
	u := schemas.Unrated{Event: parked, ReasonCode: schemas.ReasonNoContract, Reason: "none", Stage: "rater", At: ratedTime,
		Record: &schemas.RecordOrigin{Partition: 3, Offset: 71, Contract: "k-9"}}
	malformed := schemas.Unrated{Event: schemas.UsageEvent{ID: "accepted:3:72"}, ReasonCode: schemas.ReasonMalformed,
		Reason: "bad", Stage: "rater", Raw: "x", At: ratedTime}
	batch := []kafka.Message{ratedMsg(t, 0, 1, first), ratedMsg(t, 0, 2, second),
		unratedMsg(t, 0, 1, u), unratedMsg(t, 0, 2, malformed)}
	for range 2 {
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := usagedb.NewRecords(conn).Events(ctx, "acme", usagedb.RecordFilter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d records stored, want 2: %+v", len(got), got)
	}
	for i, want := range []schemas.UsageEvent{ev, parked} {
		if schemas.PayloadHash(&got[i]) != schemas.PayloadHash(&want) || got[i].Contract != want.Contract {
			t.Errorf("stored %+v\nwant    %+v", got[i], want)
		}
	}
	for id, want := range map[string]int64{"e1": 70, "e2": 71} {
		var p int32
		var o int64
		if err := conn.QueryRow(ctx, "SELECT accepted_partition, accepted_offset FROM usage_records FINAL WHERE event_id = ?", id).Scan(&p, &o); err != nil || p != 3 || o != want {
			t.Errorf("%s: position %d/%d %v, want 3/%d", id, p, o, err, want)
		}
	}
}

// TestImportedRecordsKeepTheirUpload: a record an import published is stored
// with its upload's file name and job id (finance's usage_records columns,
// and the event rebuilt for re-rates and the billing batch); a record sent to
// the API has neither.
func TestImportedRecordsKeepTheirUpload(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	imported := record("acme", "imp-1", "c1", "api_calls", "", 0)
	imported.Import = &schemas.ImportSource{File: "march usage.csv", Job: "job_abc"}
	api := record("acme", "api-1", "c1", "api_calls", "", 1)
	if err := stage.HandleBatch(ctx, []kafka.Message{acceptedMsg(t, 0, 1, imported), acceptedMsg(t, 0, 2, api)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, file, job string }{{"imp-1", "march usage.csv", "job_abc"}, {"api-1", "", ""}} {
		var file, job string
		if err := conn.QueryRow(ctx, "SELECT import_file, import_job FROM usage_records FINAL WHERE tenant = 'acme' AND event_id = ?", c.id).
			Scan(&file, &job); err != nil || file != c.file || job != c.job {
			t.Errorf("%s: import_file %q import_job %q (%v), want %q %q", c.id, file, job, err, c.file, c.job)
		}
	}
	got, err := usagedb.NewRecords(conn).Events(ctx, "acme", usagedb.RecordFilter{}, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("events %+v %v", got, err)
	}
	for _, e := range got {
		switch {
		case e.ID == "imp-1" && (e.Import == nil || *e.Import != *imported.Import):
			t.Errorf("rebuilt imported record has import %+v", e.Import)
		case e.ID == "api-1" && e.Import != nil:
			t.Errorf("rebuilt API record has import %+v", e.Import)
		}
	}
	// The record search (GET /v1/usage) shows it.
	found, _, err := usagedb.NewRecords(conn).Search(ctx, "acme", usagedb.RecordFilter{}, nil, 10)
	if err != nil || len(found) != 2 {
		t.Fatalf("search %+v %v", found, err)
	}
	for _, u := range found {
		if (u.ID == "imp-1") != (u.Import != nil) || u.Import != nil && *u.Import != *imported.Import {
			t.Errorf("search shows %s with import %+v", u.ID, u.Import)
		}
	}
}
