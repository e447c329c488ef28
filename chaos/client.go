package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Client sends bodies to the ingest processes like a real metering system:
// a body that was not answered 202 (a transport error, 429, or any 5xx) is
// sent again unchanged, to any ingest process, with backoff, until it is
// answered or the per-body bound passes.
type Client struct {
	urls    []string
	http    *http.Client
	log     *slog.Logger
	maxBody time.Duration // how long one body may take over all its attempts

	mu         sync.Mutex
	acked      map[string][]*record // tenant → acknowledged ratable and unratable records (with re-sends)
	resends    map[string]int       // tenant → re-sent records acknowledged
	invalids   map[string]int       // tenant → invalid records refused
	bodies     int
	records    int
	retries    map[string]int // why a body was sent again: "503", "429", "5xx", "transport"
	lastAck    time.Time
	mismatches []string // answers that did not say what the body warranted
	failed     []string // bodies never acknowledged within maxBody
}

// NewClient returns a client for the ingest base URLs.
func NewClient(urls []string, log *slog.Logger) *Client {
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8, ResponseHeaderTimeout: 30 * time.Second}
	return &Client{urls: urls, http: &http.Client{Transport: tr, Timeout: 40 * time.Second}, log: log,
		maxBody: 4 * time.Minute, acked: map[string][]*record{}, resends: map[string]int{},
		invalids: map[string]int{}, retries: map[string]int{}}
}

// ingestAnswer mirrors ingest.Response.
type ingestAnswer struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Results  []struct {
		Index  int    `json:"index"`
		Status string `json:"status"`
	} `json:"results"`
}

// Send posts b until it is acknowledged, and records what was acknowledged.
func (c *Client) Send(ctx context.Context, b *Body, rng *rand.Rand) error {
	deadline := time.Now().Add(c.maxBody)
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		url := c.urls[rng.IntN(len(c.urls))]
		status, retryAfter, answer, err := c.post(ctx, url, b)
		why := ""
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			why = "transport"
		case status == http.StatusAccepted || status == http.StatusUnprocessableEntity:
			c.acknowledge(b, status, answer)
			return nil
		case status == http.StatusServiceUnavailable:
			why = "503"
		case status == http.StatusTooManyRequests:
			why = "429"
		case status >= 500:
			why = "5xx"
		default:
			c.mu.Lock()
			c.failed = append(c.failed, fmt.Sprintf("%s body answered %d: %s", b.Tenant, status, snippet(answer)))
			c.mu.Unlock()
			return nil
		}
		c.mu.Lock()
		c.retries[why]++
		c.mu.Unlock()
		if time.Now().After(deadline) {
			c.mu.Lock()
			c.failed = append(c.failed, fmt.Sprintf("%s body not acknowledged after %d attempts in %s (last: %s %v)", b.Tenant, attempt+1, c.maxBody, why, err))
			c.mu.Unlock()
			return nil
		}
		if err := sleep(ctx, max(wait, retryAfter)); err != nil {
			return err
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (c *Client) post(ctx context.Context, url string, b *Body) (int, time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/usage", bytes.NewReader(b.Data))
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Kakin-Tenant", b.Tenant)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, nil, err
	}
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ra = min(time.Duration(s)*time.Second, 5*time.Second)
	}
	return resp.StatusCode, ra, body, nil
}

// acknowledge checks the answer record by record against what each record
// is, and keeps the accepted ones.
func (c *Client) acknowledge(b *Body, status int, body []byte) {
	var a ingestAnswer
	err := json.Unmarshal(body, &a)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies++
	c.records += len(b.records)
	c.lastAck = time.Now()
	if err != nil {
		c.mismatches = append(c.mismatches, fmt.Sprintf("%s: undecodable answer %d: %s", b.Tenant, status, snippet(body)))
		return
	}
	byIndex := map[int]string{}
	for _, r := range a.Results {
		byIndex[r.Index] = r.Status
	}
	wantRejected := 0
	for i, r := range b.records {
		got, ok := byIndex[i]
		if !ok && a.Rejected == 0 {
			got = "accepted" // an answer without rejections may list no results
		}
		if r.kind == invalid {
			wantRejected++
			c.invalids[b.Tenant]++
			if got != "rejected" {
				c.mismatches = append(c.mismatches, fmt.Sprintf("%s record %s: invalid but answered %q", b.Tenant, r.event.ID, got))
			}
			continue
		}
		if got == "rejected" {
			c.mismatches = append(c.mismatches, fmt.Sprintf("%s record %s: valid but rejected", b.Tenant, r.event.ID))
			continue
		}
		c.acked[b.Tenant] = append(c.acked[b.Tenant], r)
	}
	c.resends[b.Tenant] += b.resends
	if a.Rejected != wantRejected || a.Accepted != len(b.records)-wantRejected {
		c.mismatches = append(c.mismatches, fmt.Sprintf("%s body: %d accepted %d rejected, want %d and %d",
			b.Tenant, a.Accepted, a.Rejected, len(b.records)-wantRejected, wantRejected))
	}
}

func snippet(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
