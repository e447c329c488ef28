package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/segmentio/kafka-go"
)

// TestRecordsSearch: statuses, every filter, counts, tenant scope, and
// keyset pages over records and their duplicates that neither skip nor
// repeat — also when rows arrive while paging.
func TestRecordsSearch(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	recs := map[string]schemas.UsageEvent{
		"r1": record("acme", "r1", "c1", "api_calls", "k-1", 0), // rated, two duplicates
		"r2": record("acme", "r2", "c1", "sms", "", 1),          // unrated
		"r3": record("acme", "r3", "c2", "api_calls", "", 2),    // pending, one duplicate
		"r4": record("acme", "r4", "c2", "api_calls", "k-1", 3), // rated, invalidated
		"r5": record("acme", "r5", "c1", "api_calls", "", 4),    // rated, invalidated and cancelled
		"r6": record("acme", "r6", "c1", "sms", "", 5),          // unrated, invalidated
	}
	off := int64(0)
	next := func() int64 { off++; return off }
	var batch []kafka.Message
	for _, id := range []string{"r1", "r2", "r3", "r4", "r5", "r6"} {
		batch = append(batch, acceptedMsg(t, 0, next(), recs[id]))
	}
	batch = append(batch, acceptedMsg(t, 0, next(), record("beta", "r1", "c1", "api_calls", "", 0)))
	for _, id := range []string{"r1", "r4", "r5"} {
		l := line("acme", recs[id].Customer, "2026-03", id, "api_calls", "1.5", "3", "JPY")
		l.Event = recs[id]
		batch = append(batch, ratedMsg(t, 0, next(), l))
	}
	for _, id := range []string{"r2", "r6"} {
		u := unrated("acme", id, schemas.ReasonUnknownElement)
		u.Event = recs[id]
		batch = append(batch, unratedMsg(t, 0, next(), u))
	}
	batch = append(batch, statusMsg(t, 0, next(), recs["r4"], 1), statusMsg(t, 0, next(), recs["r5"], 1),
		statusMsg(t, 0, next(), recs["r5"], 2), statusMsg(t, 0, next(), recs["r6"], 1))
	for _, d := range []schemas.Duplicate{duplicate("acme", "r1", 1, 50, 0, 1, false), duplicate("acme", "r1", 0, 60, 0, 1, true),
		duplicate("acme", "r3", 2, 5, 0, 3, false)} {
		d.Event.Customer, d.Event.Time = recs[d.Event.ID].Customer, recs[d.Event.ID].Time
		d.Event.ReceivedAt = march.Add(time.Minute + time.Duration(d.Self.Offset)*time.Second) // distinct per duplicate
		batch = append(batch, dupMsg(t, d.Self.Partition, d.Self.Offset, d))
	}
	for range 2 { // a redelivery changes nothing
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	r := NewRecords(usagedb.NewRecords(conn), page.NewCodec([]byte("k"), 100))

	want := map[string]string{"r1": usagedb.StatusRated, "r2": usagedb.StatusUnrated, "r3": usagedb.StatusPending, "r4": usagedb.StatusInvalid, "r5": usagedb.StatusRated, "r6": usagedb.StatusInvalid}
	all, next0, err := r.records.Search(ctx, "acme", usagedb.RecordFilter{}, nil, 100)
	if err != nil || next0 != nil {
		t.Fatal(err, next0)
	}
	var order []string
	for _, rec := range all {
		order = append(order, rec.ID+":"+rec.Status)
		if rec.Status != usagedb.StatusDuplicate && rec.Status != want[rec.ID] {
			t.Errorf("%s: status %s, want %s", rec.ID, rec.Status, want[rec.ID])
		}
	}
	if got := strings.Join(order, " "); got != "r1:rated r1:duplicate r1:duplicate r2:unrated r3:pending r3:duplicate r4:invalid r5:rated r6:invalid" {
		t.Errorf("search order %s", got)
	}
	if all[0].Generation != 0 || all[6].Generation != 1 || all[7].Generation != 2 || all[0].Attributes["region"] != "jp" {
		t.Errorf("records %+v", all)
	}

	at := func(min int) time.Time { return march.Add(time.Duration(min) * time.Minute) }
	for _, tt := range []struct {
		name   string
		f      usagedb.RecordFilter
		tenant string
		want   uint64
	}{
		{"all, duplicates included", usagedb.RecordFilter{}, "acme", 9},
		{"rated", usagedb.RecordFilter{Status: usagedb.StatusRated}, "acme", 2},
		{"unrated", usagedb.RecordFilter{Status: usagedb.StatusUnrated}, "acme", 1},
		{"pending", usagedb.RecordFilter{Status: usagedb.StatusPending}, "acme", 1},
		{"invalid", usagedb.RecordFilter{Status: usagedb.StatusInvalid}, "acme", 2},
		{"duplicate", usagedb.RecordFilter{Status: usagedb.StatusDuplicate}, "acme", 3},
		{"rated of a customer", usagedb.RecordFilter{UsageFilter: usagedb.UsageFilter{Customer: "c2"}, Status: usagedb.StatusRated}, "acme", 0},
		{"invalid of a customer", usagedb.RecordFilter{UsageFilter: usagedb.UsageFilter{Customer: "c2"}, Status: usagedb.StatusInvalid}, "acme", 1},
		{"customer", usagedb.RecordFilter{UsageFilter: usagedb.UsageFilter{Customer: "c1"}}, "acme", 6},
		{"element", usagedb.RecordFilter{UsageFilter: usagedb.UsageFilter{Element: "sms"}}, "acme", 2},
		{"contract", usagedb.RecordFilter{Contract: "k-1"}, "acme", 2},
		{"id", usagedb.RecordFilter{ID: "r1"}, "acme", 3},
		{"event time", usagedb.RecordFilter{EventFrom: at(1), EventTo: at(3)}, "acme", 3}, // r2, r3 and r3's duplicate
		{"event time and status", usagedb.RecordFilter{EventFrom: at(3), Status: usagedb.StatusRated}, "acme", 1},
		{"received time", usagedb.RecordFilter{UsageFilter: usagedb.UsageFilter{From: at(61), To: at(65)}}, "acme", 4}, // r2..r5; duplicates were received at +1 min
		{"other tenant", usagedb.RecordFilter{}, "beta", 1},
		{"other tenant, invalid", usagedb.RecordFilter{Status: usagedb.StatusInvalid}, "beta", 0},
	} {
		n, err := r.records.Count(ctx, tt.tenant, tt.f)
		if err != nil || n != tt.want {
			t.Errorf("%s: count %d, %v; want %d", tt.name, n, err, tt.want)
		}
		found, _, err := r.records.Search(ctx, tt.tenant, tt.f, nil, 100)
		if err != nil || uint64(len(found)) != tt.want {
			t.Errorf("%s: search found %d, %v; want %d", tt.name, len(found), err, tt.want)
		}
		for _, rec := range found {
			if tt.f.Status != "" && rec.Status != tt.f.Status {
				t.Errorf("%s: %s has status %s", tt.name, rec.ID, rec.Status)
			}
		}
	}

	// Pages of 2 over HTTP, cursors included, while records arrive.
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"pageSize": {"2"}}
		if cursor != "" {
			q.Set("nextPage", cursor)
		}
		var pg UsageRecordPage
		if code := serve(t, r.ServeSearch, "acme", "/v1/usage?"+q.Encode(), &pg); code != 200 || len(pg.Records) > 2 {
			t.Fatalf("page %d: %d %+v", pages, code, pg)
		}
		for _, rec := range pg.Records {
			seen[fmt.Sprintf("%s/%s/%s", rec.ID, rec.Status, rec.ReceivedAt.Format(time.RFC3339Nano))]++
		}
		if pages == 1 { // a record and a duplicate of r1 arrive behind the cursor, one after it
			more := []kafka.Message{acceptedMsg(t, 0, next(), record("acme", "r0", "c1", "api_calls", "", 9)),
				acceptedMsg(t, 0, next(), record("acme", "r9", "c1", "api_calls", "", 9)),
				dupMsg(t, 0, 1, duplicate("acme", "r1", 0, 1, 0, 1, false))}
			if err := stage.HandleBatch(ctx, more); err != nil {
				t.Fatal(err)
			}
		}
		if pg.NextPage == "" {
			break
		}
		cursor = pg.NextPage
	}
	if len(seen) != 10 || seen["r9/pending/"+record("acme", "r9", "", "", "", 9).ReceivedAt.Format(time.RFC3339Nano)] != 1 {
		t.Errorf("paging saw %d distinct rows, want the 9 and r9 added after the cursor: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s on %d pages", k, n)
		}
	}
	// A cursor of acme's is not valid for another tenant or other filters.
	for _, tt := range []struct{ tenant, query string }{{"beta", ""}, {"acme", "&status=rated"}} {
		var pg map[string]any
		if code := serve(t, r.ServeSearch, tt.tenant, "/v1/usage?nextPage="+url.QueryEscape(cursor)+tt.query, &pg); code != 400 {
			t.Errorf("cursor replayed as %s%s: %d", tt.tenant, tt.query, code)
		}
	}
	var bad map[string]any
	if code := serve(t, r.ServeSearch, "acme", "/v1/usage?status=valid", &bad); code != 400 {
		t.Errorf("unknown status: %d %v", code, bad)
	}
	var cnt map[string]uint64
	if code := serve(t, r.ServeCount, "acme", "/v1/usage/count?status=invalid&customer=c1", &cnt); code != 200 || cnt["count"] != 1 {
		t.Errorf("count over HTTP: %d %v", code, cnt)
	}
}

// TestRecordDetail: one record with its status history, its lines named by
// kind, its unrated reason and its duplicates; 404 for another tenant.
func TestRecordDetail(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	ev := record("acme", "d1", "c1", "api_calls", "", 0)
	usage := line("acme", "c1", "2026-03", "d1", "api_calls", "1.5", "3", "JPY")
	usage.Event = ev
	inv := usage
	inv.LineID = schemas.CorrectionLineID("acme", "d1", "api_calls", schemas.ActionInvalidate, 1)
	inv.Amount, inv.Event.Quantity = dec("-3"), dec("-1.5")
	dup := duplicate("acme", "d1", 1, 9, 0, 1, true)
	batch := []kafka.Message{acceptedMsg(t, 0, 1, ev), ratedMsg(t, 0, 2, usage), ratedMsg(t, 0, 3, inv),
		statusMsg(t, 0, 4, ev, 1), dupMsg(t, 1, 9, dup)}
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	r := NewRecords(usagedb.NewRecords(conn), page.NewCodec([]byte("k"), 100))
	var d usagedb.RecordDetail
	if code := serve(t, r.ServeGet, "acme", "/v1/usage/d1", &d); code != 200 {
		t.Fatalf("GET d1: %d", code)
	}
	if d.Status != usagedb.StatusInvalid || d.Generation != 1 || len(d.History) != 1 || len(d.Lines) != 2 || len(d.Duplicates) != 1 || d.Unrated != nil {
		t.Fatalf("detail %+v", d)
	}
	if d.Lines[0].Kind != usagedb.LineUsage || d.Lines[0].Amount != "3" || d.Lines[1].Kind != usagedb.LineInvalidate || d.Lines[1].Generation != 1 || d.Lines[1].Amount != "-3" {
		t.Errorf("lines %+v", d.Lines)
	}
	if !d.Duplicates[0].PayloadDiffers || d.Duplicates[0].Position.Offset != 9 {
		t.Errorf("duplicates %+v", d.Duplicates)
	}
	var p map[string]any
	if code := serve(t, r.ServeGet, "beta", "/v1/usage/d1", &p); code != 404 || p["code"] != "not_found" {
		t.Errorf("another tenant's record: %d %v", code, p)
	}
}

// serve runs a handler as tenant and decodes the JSON answer into out.
func serve(t *testing.T, h http.HandlerFunc, tenantID, target string, out any) int {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/usage/{usageId}", h)
	mux.HandleFunc("GET /v1/usage", h)
	req := httptest.NewRequest("GET", target, nil)
	req = req.WithContext(tenant.With(req.Context(), tenantID))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %d %s: %v", target, rec.Code, rec.Body, err)
	}
	return rec.Code
}

// TestRecordDetailUnitPrice: a line shows the price per unit it was priced
// at (price lists, per_unit rate tables) and leaves unit_price out when it
// has none (tiered and other rates, whose amount over the quantity is no
// price the rate has) — never a 0 it was not priced at. Lines stored before
// unit_priced existed are told apart by their item: price-list lines always
// carried their price, catalogue lines (item contract/fee) never did.
func TestRecordDetailUnitPrice(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	r := NewRecords(usagedb.NewRecords(conn), page.NewCodec([]byte("k"), 100))
	tests := []struct {
		name       string
		item       string
		unitPrice  string
		unitPriced bool
		legacy     bool   // stored by an aggregator without unit_priced
		want       string // "" = no unit_price in the answer
	}{
		{"price list", "api_calls", "0.01", true, false, "0.01"},
		{"free on the price list", "api_calls", "0", true, false, "0"},
		{"per_unit rate table", "k-1/api_calls", "1.2", true, false, "1.2"},
		{"graduated rate table", "k-1/api_calls", "0", false, false, ""},
		{"older price-list line", "api_calls", "0.5", false, true, "0.5"},
		{"older catalogue line", "k-1/api_calls", "0", false, true, ""},
	}
	for i, tt := range tests {
		id := fmt.Sprintf("u%d", i)
		ev := record("acme", id, "c1", "api_calls", "", i)
		l := line("acme", "c1", "2026-03", id, "api_calls", "1.5", "3", "JPY")
		l.Event, l.Item, l.UnitPrice, l.UnitPriced = ev, tt.item, dec(tt.unitPrice), tt.unitPriced
		l.LineID = schemas.LineID("acme", id, tt.item)
		batch := []kafka.Message{acceptedMsg(t, 0, int64(2*i), ev)}
		if tt.legacy {
			// What an aggregator before the column wrote: no unit_priced.
			b, err := conn.PrepareBatch(ctx, `INSERT INTO rated_usage (tenant, period, customer, line_id, event_id, element, item,
				contract, quantity, unit_price, amount, currency, event_time, received_at, rated_at, version)`)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Append(l.Event.Tenant, l.Period, l.Event.Customer, l.LineID, id, l.Event.Element, l.Item, "",
				l.Event.Quantity, l.UnitPrice, l.Amount, l.Currency, chTime(l.Event.Time), chTime(l.Event.ReceivedAt),
				chTime(l.RatedAt), uint64(1)); err != nil {
				t.Fatal(err)
			}
			if err := b.Send(); err != nil {
				t.Fatal(err)
			}
		} else {
			batch = append(batch, ratedMsg(t, 0, int64(2*i+1), l))
		}
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		var d struct {
			Lines []map[string]any `json:"lines"`
		}
		if code := serve(t, r.ServeGet, "acme", "/v1/usage/"+id, &d); code != 200 || len(d.Lines) != 1 {
			t.Fatalf("%s: %d %+v", tt.name, code, d)
		}
		got, has := d.Lines[0]["unit_price"]
		switch {
		case tt.want == "" && has:
			t.Errorf("%s: unit_price %v, want none", tt.name, got)
		case tt.want != "" && got != tt.want:
			t.Errorf("%s: unit_price %v, want %s", tt.name, got, tt.want)
		}
		if d.Lines[0]["amount"] != "3" || d.Lines[0]["quantity"] != "1.5" {
			t.Errorf("%s: line %v", tt.name, d.Lines[0])
		}
	}
}

// chTime maps a time into ClickHouse DateTime's range, as usagedb's inserts
// do.
func chTime(t time.Time) time.Time {
	if t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	return t
}
