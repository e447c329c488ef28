package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/apitest"
)

// TestUsageLifecycle runs the pipeline as two processes (ingest and admin in
// one; dedupe, rater and aggregator in the other) and drives the usage record
// lifecycle over HTTP, every request and answer validated against the OpenAPI
// document: search and count with statuses, invalidate (charges drop by
// exactly the record's amount), cancel (restored exactly), bulk invalidate
// and cancel of a filtered set, and a closed period (closed with the CLI)
// refusing both.
func TestUsageLifecycle(t *testing.T) {
	e := newEnv(t, e2ePrices)
	front := e.start("front", "ingest,admin")
	e.start("back", "dedupe,rater,aggregator")
	v := apitest.NewValidator(t)
	a := &api{t: t, base: front.url, http: v.Client()}
	as := func(tenant string) []string { return []string{"Kakin-Tenant", tenant} }
	acme := as("acme")

	usage := strings.Join([]string{
		`{"id":"l1","customer":"c1","element":"api_calls","quantity":3,"time":"2026-11-02T10:00:00+09:00","attributes":{"region":"jp"}}`, // 1.5 → 2
		`{"id":"l2","customer":"c1","element":"api_calls","quantity":7,"time":"2026-11-03T10:00:00+09:00"}`,                              // 3.5 → 4
		`{"id":"l3","customer":"c1","element":"transfer_gb","quantity":"1.25","time":"2026-11-04T10:00:00+09:00"}`,                       // 12.25 → 12
		`{"id":"l4","customer":"c1","element":"sms","quantity":1,"time":"2026-11-05T10:00:00+09:00"}`,                                    // unrated
		`{"id":"l1","customer":"c1","element":"api_calls","quantity":3,"time":"2026-11-02T10:00:00+09:00","attributes":{"region":"jp"}}`, // duplicate
		`{"id":"l5","customer":"c1","element":"api_calls","quantity":2,"time":"2026-10-15T10:00:00+09:00"}`,                              // October: 1
		`{"id":"l/6","customer":"c2","element":"api_calls","quantity":1,"time":"2026-11-06T10:00:00+09:00"}`,                             // an id with a slash
	}, "\n")
	if r := a.do("POST", "/v1/usage", "", []byte(usage), append(acme, "Content-Type", "application/x-ndjson")...); r.status != 202 {
		t.Fatalf("post usage: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/v1/usage", "", []byte(`{"id":"l1","customer":"c1","element":"api_calls","quantity":1,"time":"2026-11-02T10:00:00Z"}`),
		append(as("other"), "Content-Type", "application/x-ndjson")...); r.status != 202 {
		t.Fatalf("post other's usage: %d %s", r.status, r.body)
	}
	count := func(tenant, query string) int {
		var c struct{ Count int }
		r := a.do("GET", "/v1/usage/count?"+query, "", nil, as(tenant)...)
		r.json(t, &c)
		if r.status != 200 {
			t.Fatalf("count %s: %d %s", query, r.status, r.body)
		}
		return c.Count
	}
	waitFor(t, 30*time.Second, "every record stored and priced", func() (bool, string) {
		all, pending, dups := count("acme", ""), count("acme", "status=pending"), count("acme", "status=duplicate")
		return all == 7 && pending == 0 && dups == 1, fmt.Sprintf("records %d, pending %d, duplicates %d; %s", all, pending, dups, e.lags(t.Context()))
	})
	for _, tt := range []struct {
		tenant, query string
		want          int
	}{
		{"acme", "status=rated", 5}, {"acme", "status=unrated", 1}, {"acme", "status=invalid", 0},
		{"acme", "customer=c1&element=api_calls", 4}, {"acme", "event_from=2026-11-01T00:00:00%2B09:00", 6},
		{"acme", "id=l1", 2}, {"other", "", 1},
	} {
		if got := count(tt.tenant, tt.query); got != tt.want {
			t.Errorf("count as %s ?%s = %d, want %d", tt.tenant, tt.query, got, tt.want)
		}
	}

	// Pages of 3 walk every record once, each with its status.
	statuses := map[string][]string{}
	next := ""
	for pages := 0; ; pages++ {
		path := "/v1/usage?pageSize=3"
		if next != "" {
			path += "&nextPage=" + url.QueryEscape(next)
		}
		var pg struct {
			Records []struct {
				ID, Status string
				Attributes map[string]string
			}
			NextPage string
		}
		r := a.do("GET", path, "", nil, acme...)
		r.json(t, &pg)
		if r.status != 200 || len(pg.Records) > 3 || pages > 5 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		for _, rec := range pg.Records {
			statuses[rec.ID] = append(statuses[rec.ID], rec.Status)
		}
		if next = pg.NextPage; next == "" {
			break
		}
	}
	if got := fmt.Sprint(statuses); got != "map[l/6:[rated] l1:[rated duplicate] l2:[rated] l3:[rated] l4:[unrated] l5:[rated]]" {
		t.Errorf("statuses %s", got)
	}

	total := func(customer, period string) chargesResponse {
		var c chargesResponse
		r := a.do("GET", "/v1/charges?customer="+customer+"&period="+period, "", nil, acme...)
		r.json(t, &c)
		return c
	}
	waitTotal := func(what, customer, period, want string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() (bool, string) {
			c := total(customer, period)
			return c.Total == want, fmt.Sprintf("total %s, want %s; %s", c.Total, want, e.lags(t.Context()))
		})
	}
	if c := total("c1", "2026-11"); c.Total != "18" {
		t.Fatalf("c1 2026-11 before any correction: %+v, want 18", c)
	}

	// Invalidate l1: the total drops by exactly its 2 yen; a retry with the
	// same Idempotency-Key gets the same answer and publishes nothing new.
	first := a.do("POST", "/v1/usage/l1/invalidate", "", []byte(`{"reason":"test meter"}`), append(acme, "Idempotency-Key", "inv-l1")...)
	again := a.do("POST", "/v1/usage/l1/invalidate", "", []byte(`{"reason":"test meter"}`), append(acme, "Idempotency-Key", "inv-l1")...)
	if first.status != 202 || again.status != 202 || !bytes.Equal(first.body, again.body) || again.header.Get("Idempotent-Replayed") != "true" ||
		!bytes.Contains(first.body, []byte(`"generation":1`)) {
		t.Fatalf("invalidate l1: %d %s; retry %d %s", first.status, first.body, again.status, again.body)
	}
	waitTotal("l1's invalidation", "c1", "2026-11", "16")
	var d struct {
		Status     string
		Generation int
		History    []struct{ Action, Reason string }
		Lines      []struct{ Kind, Amount string }
		Duplicates []struct{ ID string }
	}
	// The status row and the correction line reach ClickHouse on different
	// topics, possibly in different aggregator batches: the total moving
	// says nothing about the status yet, so wait for it too.
	var r reply
	waitFor(t, 30*time.Second, "l1's status invalid", func() (bool, string) {
		r = a.do("GET", "/v1/usage/l1", "", nil, acme...)
		d.History, d.Lines, d.Duplicates = nil, nil, nil
		r.json(t, &d)
		return d.Status == "invalid", fmt.Sprintf("%d %s", r.status, r.body)
	})
	if r.status != 200 || d.Status != "invalid" || d.Generation != 1 || len(d.History) != 1 || d.History[0].Reason != "test meter" ||
		len(d.Lines) != 2 || d.Lines[1].Kind != "invalidate" || d.Lines[1].Amount != "-2" || len(d.Duplicates) != 1 {
		t.Errorf("l1 after invalidation: %d %s", r.status, r.body)
	}
	if c := total("c1", "2026-11"); len(c.Lines) != 2 || c.Lines[0].Events != 1 || c.Lines[0].Quantity != "7" {
		t.Errorf("api_calls after invalidating l1: %+v, want 1 record, 7 calls", c.Lines)
	}
	if r := a.do("POST", "/v1/usage/l1/invalidate", "", nil, acme...); r.status != 409 || r.problemCode() != "usage_already_invalid" {
		t.Errorf("invalidate l1 again: %d %s", r.status, r.body)
	}
	if r := a.do("GET", "/v1/usage/l5", "", nil, as("other")...); r.status != 404 {
		t.Errorf("acme's l5 as tenant other: %d %s, want 404", r.status, r.body)
	}

	// Cancel: exactly back.
	if r := a.do("POST", "/v1/usage/l1/cancel", "", nil, acme...); r.status != 202 || !bytes.Contains(r.body, []byte(`"generation":2`)) {
		t.Fatalf("cancel l1: %d %s", r.status, r.body)
	}
	waitTotal("l1's cancellation", "c1", "2026-11", "18")
	// The events count reads l1's status, which travels apart from the
	// correction line (usage.status, usage.rated): wait for it too.
	waitFor(t, 30*time.Second, "api_calls after the cancellation: 2 records, 10 calls", func() (bool, string) {
		c := total("c1", "2026-11")
		return len(c.Lines) > 0 && c.Lines[0].Events == 2 && c.Lines[0].Quantity == "10", fmt.Sprintf("%+v", c.Lines)
	})

	// An id with a slash is addressed URL-escaped.
	if r := a.do("GET", "/v1/usage/"+url.PathEscape("l/6"), "", nil, acme...); r.status != 200 || !bytes.Contains(r.body, []byte(`"id":"l/6"`)) {
		t.Errorf("GET l/6: %d %s", r.status, r.body)
	}

	// A closed period's record is corrected too (nothing is refused or lost):
	// the answer names the closed period, whose receivables stay final while
	// the next open period's billing run books the change as an adjustment;
	// GET /v1/charges marks the closed period's stream figures.
	e.run(t, "periods", "close", "--tenant", "acme", "--period", "2026-10")
	if r := a.do("POST", "/v1/usage/l5/invalidate", "", nil, acme...); r.status != 202 || !bytes.Contains(r.body, []byte(`"adjusted_periods":["2026-10"]`)) {
		t.Errorf("invalidate in the closed October: %d %s, want 202 with adjusted_periods [2026-10]", r.status, r.body)
	}
	waitTotal("l5's invalidation in the closed October", "c1", "2026-10", "0")
	if r := a.do("GET", "/v1/charges?customer=c1&period=2026-10", "", nil, acme...); r.status != 200 || !bytes.Contains(r.body, []byte(`"period_closed":true`)) {
		t.Errorf("charges of the closed October: %d %s, want period_closed", r.status, r.body)
	}
	if r := a.do("POST", "/v1/usage/l5/cancel", "", nil, acme...); r.status != 202 || !bytes.Contains(r.body, []byte(`"adjusted_periods":["2026-10"]`)) {
		t.Errorf("cancel in the closed October: %d %s", r.status, r.body)
	}
	waitTotal("l5's cancellation in the closed October", "c1", "2026-10", "1")

	// Bulk over November's api calls: l1 and l2 (6 yen), then back.
	bulk := []byte(`{"customer":"c1","element":"api_calls","event_from":"2026-11-01T00:00:00+09:00","reason":"bulk test"}`)
	r = a.do("POST", "/v1/usage/invalidate", "", bulk, acme...)
	if r.status != 202 || !bytes.Contains(r.body, []byte(`"matched":2,"changed":2,"unchanged":0`)) {
		t.Fatalf("bulk invalidate: %d %s", r.status, r.body)
	}
	waitTotal("the bulk invalidation", "c1", "2026-11", "12")
	// The statuses travel apart from the lines (usage.status): wait for
	// them too before the cancel, which reads them to decide what changes.
	waitFor(t, 30*time.Second, "2 invalid records after the bulk invalidation", func() (bool, string) {
		got := count("acme", "status=invalid")
		return got == 2, fmt.Sprintf("%d invalid", got)
	})
	if r := a.do("POST", "/v1/usage/cancel", "", bulk, acme...); r.status != 202 || !bytes.Contains(r.body, []byte(`"changed":2`)) {
		t.Fatalf("bulk cancel: %d %s", r.status, r.body)
	}
	waitTotal("the bulk cancellation", "c1", "2026-11", "18")
	if c := total("c1", "2026-10"); c.Total != "1" {
		t.Errorf("the closed October changed: %+v", c)
	}
	if c := total("c2", "2026-11"); c.Total != "1" {
		t.Errorf("c2 changed: %+v", c)
	}
}
