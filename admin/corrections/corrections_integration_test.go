package corrections

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/segmentio/kafka-go"
)

// Invalidate takes exactly the record's amount, quantity and event out of
// the customer's charges; cancel puts exactly that back; each is refused
// when the record is already in the target status. Unrated records change
// status without lines. Another tenant's record does not exist.
func TestInvalidateAndCancelAreExact(t *testing.T) {
	p := newPipeline(t)
	p.accept(
		event("acme", "e1", "c1", "api_calls", "3", 0),      // 1.5 → 2 yen (half up)
		event("acme", "e2", "c1", "api_calls", "7", 1),      // 3.5 → 4
		event("acme", "e3", "c1", "transfer_gb", "1.25", 2), // 12.25 → 12
		event("acme", "e4", "c1", "sms", "1", 3),            // unknown element: unrated
		event("acme", "big", "c2", "storage", "0.01", 4),    // 12345678.90123456789 → 12345679
		event("beta", "e1", "c1", "api_calls", "1", 0),      // same id, other tenant
	)
	p.run(1)
	start := p.total("acme", "c1", "2026-11", "api_calls")
	if start != (total{Amount: "18", Quantity: "10", Events: 2}) {
		t.Fatalf("before any correction: %+v, want 18 yen, 10 api calls in 2 records", start)
	}

	code, _, body := p.post("acme", "/v1/usage/e1/invalidate", `{"reason":"meter fault"}`)
	if code != http.StatusAccepted || body["generation"] != float64(1) || body["status"] != "invalid" || body["action"] != "invalidate" {
		t.Fatalf("invalidate e1: %d %v", code, body)
	}
	// Nothing changes until the correction went through the pipeline.
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != start {
		t.Errorf("before the correction is applied: %+v", got)
	}
	p.run(1)
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != (total{Amount: "16", Quantity: "7", Events: 1}) {
		t.Errorf("after invalidating e1: %+v, want 16 (18 − 2), 7 calls, 1 record", got)
	}
	d := p.detail("acme", "e1")
	if d.Status != usagedb.StatusInvalid || d.Generation != 1 || len(d.History) != 1 || len(d.Lines) != 2 {
		t.Fatalf("e1 after invalidate: %+v", d)
	}
	if h := d.History[0]; h.Action != "invalidate" || h.Status != "invalid" || h.Reason != "meter fault" || h.Actor != "client:kc_test" || !h.Priced {
		t.Errorf("history entry %+v", h)
	}
	if l := d.Lines[1]; l.Kind != "invalidate" || l.Generation != 1 || l.Amount != "-2" || l.Quantity != "-3" || l.Period != "2026-11" ||
		l.LineID != schemas.CorrectionLineID("acme", "e1", "api_calls", "invalidate", 1) {
		t.Errorf("correction line %+v", l)
	}
	if d.Lines[0].Kind != "usage" || d.Lines[0].Amount != "2" {
		t.Errorf("usage line %+v", d.Lines[0])
	}
	if d.Attributes["region"] != "jp" || !d.Time.Equal(usageTime) {
		t.Errorf("record not rebuilt exactly: %+v", d.UsageRecord)
	}

	if code, _, body := p.post("acme", "/v1/usage/e1/invalidate", ""); code != http.StatusConflict || body["code"] != "usage_already_invalid" {
		t.Errorf("invalidating an invalid record: %d %v, want 409 usage_already_invalid", code, body)
	}
	if code, _, body := p.post("acme", "/v1/usage/e2/cancel", ""); code != http.StatusConflict || body["code"] != "usage_not_invalid" {
		t.Errorf("cancelling a valid record: %d %v, want 409 usage_not_invalid", code, body)
	}

	code, _, body = p.post("acme", "/v1/usage/e1/cancel", `{"reason":"meter was fine"}`)
	if code != http.StatusAccepted || body["generation"] != float64(2) || body["status"] != "valid" {
		t.Fatalf("cancel e1: %d %v", code, body)
	}
	p.run(1)
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != start {
		t.Errorf("after cancelling the invalidation: %+v, want %+v exactly", got, start)
	}
	if d := p.detail("acme", "e1"); d.Status != usagedb.StatusRated || d.Generation != 2 || len(d.Lines) != 3 || d.Lines[2].Kind != "cancel" || d.Lines[2].Amount != "2" {
		t.Errorf("e1 after cancel: %+v", d)
	}

	// A second round trip: generations 3 and 4, exact again.
	for _, step := range []struct{ action, want string }{{"invalidate", "16"}, {"cancel", "18"}} {
		if code, _, body := p.post("acme", "/v1/usage/e1/"+step.action, ""); code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", step.action, code, body)
		}
		p.run(1)
		if got := p.total("acme", "c1", "2026-11", "api_calls"); got.Amount != step.want {
			t.Errorf("after %s again: %+v, want %s", step.action, got, step.want)
		}
	}

	// A large amount: exact to the last yen.
	if code, _, _ := p.post("acme", "/v1/usage/big/invalidate", ""); code != http.StatusAccepted {
		t.Fatal(code)
	}
	p.run(1)
	if got := p.total("acme", "c2", "2026-11", "storage"); got.Amount != "0" || got.Quantity != "0" || got.Events != 0 {
		t.Errorf("c2 after invalidating its only record: %+v, want 0", got)
	}

	// An unrated record: its status changes, no line is added.
	if code, _, body := p.post("acme", "/v1/usage/e4/invalidate", ""); code != http.StatusAccepted {
		t.Fatalf("invalidate unrated e4: %d %v", code, body)
	}
	p.run(1)
	if d := p.detail("acme", "e4"); d.Status != usagedb.StatusInvalid || len(d.Lines) != 0 || len(d.History) != 1 || d.History[0].Priced || d.Unrated == nil {
		t.Errorf("unrated e4 after invalidate: %+v", d)
	}
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != start {
		t.Errorf("invalidating an unrated record changed charges: %+v", got)
	}

	// Tenant scope: beta's e1 is untouched, acme's e2 does not exist for beta.
	if code, _, body := p.post("beta", "/v1/usage/e2/invalidate", ""); code != http.StatusNotFound || body["code"] != "not_found" {
		t.Errorf("another tenant's record: %d %v, want 404", code, body)
	}
	if code, _, _ := p.do("beta", "GET", "/v1/usage/e2", ""); code != http.StatusNotFound {
		t.Errorf("GET another tenant's record: %d, want 404", code)
	}
	if d := p.detail("beta", "e1"); d.Status != usagedb.StatusRated || d.Generation != 0 {
		t.Errorf("beta's e1 changed by acme's corrections: %+v", d)
	}
	if got := p.total("beta", "c1", "2026-11", "api_calls"); got.Amount != "0.02" {
		t.Errorf("beta total %+v", got)
	}
	if code, _, _ := p.post("acme", "/v1/usage/nope/invalidate", ""); code != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", code)
	}
	if code, _, body := p.post("acme", "/v1/usage/e2/invalidate", `{"reason":1}`); code != http.StatusBadRequest || body["code"] != "invalid_body" {
		t.Errorf("bad body: %d %v", code, body)
	}
}

// Redelivery and races: the correction is published twice (two admins at
// once, both reading generation 0), and every batch is handed to the rater
// and to the aggregator twice. The total still drops by exactly the record's
// amount, once, and only generation 1 exists.
func TestCorrectionsCountOnceUnderRedeliveryAndRaces(t *testing.T) {
	p := newPipeline(t)
	p.accept(event("acme", "r1", "c1", "api_calls", "9", 0), event("acme", "r2", "c1", "api_calls", "4", 1))
	p.run(1)
	start := p.total("acme", "c1", "2026-11", "api_calls") // 4.5 → 5, 2 → 7
	if start.Amount != "7" {
		t.Fatalf("start %+v", start)
	}
	var wg sync.WaitGroup
	gens := make([]any, 2)
	for i := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, body := p.post("acme", "/v1/usage/r1/invalidate", "")
			if code != http.StatusAccepted {
				t.Errorf("concurrent invalidate %d: %d %v", i, code, body)
			}
			gens[i] = body["generation"]
		}()
	}
	wg.Wait()
	if gens[0] != float64(1) || gens[1] != float64(1) {
		t.Fatalf("two racing invalidations got generations %v, want 1 and 1", gens)
	}
	p.run(2)
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != (total{Amount: "2", Quantity: "4", Events: 1}) {
		t.Errorf("after a doubled, redelivered invalidation: %+v, want 2 (7 − 5), 4 calls, 1 record", got)
	}
	var stored, final uint64
	ctx := context.Background()
	if err := p.conn.QueryRow(ctx, "SELECT count() FROM rated_usage WHERE event_id = 'r1'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := p.conn.QueryRow(ctx, "SELECT count() FROM rated_usage FINAL WHERE event_id = 'r1'").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if final != 2 || stored < 4 {
		t.Errorf("r1 has %d lines (%d rows stored); want 2 lines, the repeats stored and replaced", final, stored)
	}
	if d := p.detail("acme", "r1"); d.Generation != 1 || len(d.History) != 1 {
		t.Errorf("r1 history %+v, want generation 1 only", d.History)
	}

	// A stale re-publication of generation 1 after the cancel (generation 2)
	// changes nothing: same line id, and generation 2 stays the latest.
	stale, err := p.records.Events(ctx, "acme", usagedb.RecordFilter{ID: "r1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := p.post("acme", "/v1/usage/r1/cancel", ""); code != http.StatusAccepted {
		t.Fatal(code)
	}
	p.run(2)
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != start {
		t.Errorf("after cancel: %+v, want %+v", got, start)
	}
	c := schemas.Correction{Action: "invalidate", Generation: 1, Event: stale[0], Actor: "stale"}
	if err := p.publish(c); err != nil {
		t.Fatal(err)
	}
	p.run(1)
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got != start {
		t.Errorf("a stale generation-1 correction changed the total: %+v, want %+v", got, start)
	}
	if d := p.detail("acme", "r1"); d.Generation != 2 || d.Status != usagedb.StatusRated {
		t.Errorf("r1 after a stale correction: generation %d status %s, want 2 rated", d.Generation, d.Status)
	}
}

// A record of a closed period is corrected like any other (nothing is
// refused, nothing vanishes), and the answer names the closed period whose
// change the next open period's billing run books as adjustment lines
// (billing/run: the re-rated closed period minus what its final
// receivables billed). A bulk request over open and closed periods names
// only the closed ones; another tenant's markers do not count.
func TestClosedPeriodCorrectionsBecomeAdjustments(t *testing.T) {
	p := newPipeline(t)
	oct := event("acme", "o1", "c1", "api_calls", "2", 0)
	oct.Time = oct.Time.AddDate(0, -1, 0) // 2026-10
	p.accept(oct, event("acme", "n1", "c1", "api_calls", "2", 0), event("acme", "u1", "c1", "sms", "1", 0))
	p.run(1)
	ctx := context.Background()
	if err := p.periods.Set(ctx, "acme", "2026-10", true, "test"); err != nil {
		t.Fatal(err)
	}
	if err := p.periods.Set(ctx, "beta", "2026-11", true, "test"); err != nil { // another tenant's marker
		t.Fatal(err)
	}
	tests := []struct {
		path, body string
		adjusted   string // the adjusted_periods of the answer
	}{
		{"/v1/usage/o1/invalidate", "", "[2026-10]"},
		{"/v1/usage/n1/invalidate", "", "<nil>"},
		{"/v1/usage/cancel", `{"customer":"c1"}`, "[2026-10]"},
	}
	for _, tt := range tests {
		code, _, body := p.post("acme", tt.path, tt.body)
		if code != http.StatusAccepted || fmt.Sprint(body["adjusted_periods"]) != tt.adjusted {
			t.Errorf("%s %s: %d %v, want 202 with adjusted_periods %s", tt.path, tt.body, code, body, tt.adjusted)
		}
		p.run(1)
	}
	list, err := p.periods.List(ctx, "acme")
	if err != nil || len(list) != 1 || !list[0].Closed || list[0].ChangedBy != "test" {
		t.Errorf("periods of acme: %+v %v", list, err)
	}
}

// A record that is accepted but not yet priced cannot be corrected yet: 409
// with Retry-After.
func TestPendingRecordIsRefused(t *testing.T) {
	p := newPipeline(t)
	p.accept(event("acme", "p1", "c1", "api_calls", "2", 0))
	msgs, next := readSince(t, p.read)
	p.read = next
	if err := p.agg.HandleBatch(context.Background(), msgs); err != nil { // stored, but the rater has not run
		t.Fatal(err)
	}
	code, h, body := p.post("acme", "/v1/usage/p1/invalidate", "")
	if code != http.StatusConflict || body["code"] != "usage_pending" || h.Get("Retry-After") == "" {
		t.Errorf("pending record: %d %v %v, want 409 usage_pending with Retry-After", code, h, body)
	}
	if err := p.rater.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	p.run(1)
	if code, _, body := p.post("acme", "/v1/usage/p1/invalidate", ""); code != http.StatusAccepted {
		t.Errorf("once priced: %d %v", code, body)
	}
}

// Bulk invalidation of a filtered set, and its cancellation, are exact;
// records already in the target status are left and counted; the set size is
// capped; a filter is required.
func TestBulkCorrections(t *testing.T) {
	p := newPipeline(t)
	var evs []schemas.UsageEvent
	for i := range 6 {
		evs = append(evs, event("acme", fmt.Sprintf("b%d", i), "c2", "api_calls", fmt.Sprint(i+1), i)) // 0.5, 1, 1.5 … → 1+1+2+2+3+3 = 12
	}
	evs = append(evs, event("acme", "other", "c1", "api_calls", "10", 0))
	p.accept(evs...)
	p.run(1)
	if got := p.total("acme", "c2", "2026-11", "api_calls"); got != (total{Amount: "12", Quantity: "21", Events: 6}) {
		t.Fatalf("start %+v", got)
	}
	if code, _, body := p.post("acme", "/v1/usage/b1/invalidate", ""); code != http.StatusAccepted { // one already invalid
		t.Fatal(code, body)
	}
	p.run(1)

	// b0..b3 happened in minutes 0-3.
	filter := fmt.Sprintf(`{"customer":"c2","event_from":%q,"event_to":%q,"reason":"broken meter"}`,
		usageTime.Format("2006-01-02T15:04:05Z"), usageTime.Add(4*time.Minute).Format("2006-01-02T15:04:05Z"))
	code, _, body := p.post("acme", "/v1/usage/invalidate", filter)
	if code != http.StatusAccepted || body["matched"] != float64(4) || body["changed"] != float64(3) || body["unchanged"] != float64(1) {
		t.Fatalf("bulk invalidate: %d %v, want 4 matched, 3 changed, 1 unchanged", code, body)
	}
	p.run(2)
	// Left: b4 (5 × 0.5 = 2.5 → 3) and b5 (3 × 1 → 3): 6.
	if got := p.total("acme", "c2", "2026-11", "api_calls"); got != (total{Amount: "6", Quantity: "11", Events: 2}) {
		t.Errorf("after bulk invalidate: %+v, want 6, 11 calls, 2 records", got)
	}
	if got := p.total("acme", "c1", "2026-11", "api_calls"); got.Amount != "5" {
		t.Errorf("another customer changed: %+v", got)
	}
	code, _, body = p.post("acme", "/v1/usage/cancel", `{"customer":"c2"}`)
	if code != http.StatusAccepted || body["matched"] != float64(6) || body["changed"] != float64(4) || body["unchanged"] != float64(2) {
		t.Fatalf("bulk cancel: %d %v", code, body)
	}
	p.run(1)
	if got := p.total("acme", "c2", "2026-11", "api_calls"); got != (total{Amount: "12", Quantity: "21", Events: 6}) {
		t.Errorf("after bulk cancel: %+v, want the start exactly", got)
	}

	p.svc.MaxBulk = 5
	if code, _, body := p.post("acme", "/v1/usage/invalidate", `{"element":"api_calls"}`); code != http.StatusUnprocessableEntity || body["code"] != "too_many_matches" {
		t.Errorf("over the cap: %d %v, want 422 too_many_matches", code, body)
	}
	for _, bad := range []string{`{}`, `{"reason":"all"}`, ``, `{"status":"rated","customer":"c2"}`, `{"event_from":"yesterday"}`} {
		if code, _, body := p.post("acme", "/v1/usage/invalidate", bad); code != http.StatusBadRequest {
			t.Errorf("bulk with %q: %d %v, want 400", bad, code, body)
		}
	}
	if code, _, body := p.post("beta", "/v1/usage/invalidate", `{"customer":"c2"}`); code != http.StatusAccepted || body["matched"] != float64(0) {
		t.Errorf("another tenant's bulk: %d %v, want 202 matching nothing", code, body)
	}
}

// publish writes a correction to usage.accepted as the service does.
func (p *pipeline) publish(c schemas.Correction) error {
	value, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	return p.writer.WriteMessages(context.Background(), kafka.Message{Topic: schemas.TopicAccepted,
		Key: c.Event.PartitionKey(), Value: value, Headers: schemas.CorrectionHeaders(), Time: time.Now()})
}
