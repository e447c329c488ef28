package usagedb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// History gives a re-rate the customer's valid records of a time range that
// were accepted before its own position, in accepted order; PeriodLines the
// period's current lines.
func TestHistoryAndPeriodLines(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	evs := []schemas.UsageEvent{
		record("acme", "h3", "c1", "api_calls", "", 3), // accepted first, despite its id
		record("acme", "h1", "c1", "api_calls", "", 1),
		record("acme", "h2", "c1", "api_calls", "", 2),        // invalidated below
		record("acme", "h4", "c1", "api_calls", "", 4),        // accepted after the re-rate request
		record("acme", "h5", "c2", "api_calls", "", 5),        // another customer
		record("acme", "h6", "c1", "api_calls", "", 60*24*40), // outside the range
		record("other", "h7", "c1", "api_calls", "", 1),       // another tenant
	}
	offsets := []int64{10, 11, 12, 20, 13, 14, 15}
	var batch []kafka.Message
	for i, ev := range evs {
		batch = append(batch, acceptedMsg(t, 3, offsets[i], ev))
	}
	batch = append(batch, statusMsg(t, 0, 1, evs[2], 1))
	l := line("acme", "c1", "2026-03", "h1", "api_calls", "1.5", "7", "JPY")
	batch = append(batch, ratedMsg(t, 0, 2, l))
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	r := NewRecords(conn)
	got, err := r.History(ctx, "acme", "c1", march.Add(-time.Hour), march.Add(30*24*time.Hour), 3, 18)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range got {
		ids = append(ids, ev.ID)
		if ev.Tenant != "acme" {
			t.Errorf("%s: tenant %q", ev.ID, ev.Tenant)
		}
	}
	if want := "h3,h1"; strings.Join(ids, ",") != want {
		t.Fatalf("history = %v, want %s (accepted order, valid, before offset 18, in range)", ids, want)
	}
	if !got[1].Time.Equal(evs[1].Time) || !got[1].Quantity.Equal(evs[1].Quantity) || got[1].Attributes["region"] != "jp" {
		t.Errorf("h1 read back as %+v", got[1])
	}
	lines, err := r.PeriodLines(ctx, "acme", "c1", "2026-03")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].LineID != l.LineID || lines[0].Event.ID != "h1" || lines[0].Currency != "JPY" {
		t.Fatalf("period lines = %+v", lines)
	}
}
