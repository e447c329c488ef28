package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// NewHTTPClient returns a client tuned for concurrency parallel requests to
// one host: enough idle connections that none is closed between requests,
// and no proxy, so that the service is measured and nothing in between.
func NewHTTPClient(concurrency int) *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          concurrency + 4,
		MaxIdleConnsPerHost:   concurrency + 4, // + the probe sender
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr, Timeout: 90 * time.Second}
}

// poster sends request bodies to POST /v1/usage, retrying what may be
// retried.
type poster struct {
	client      *http.Client
	url         string // full URL of /v1/usage
	tenant      string
	token       string
	maxAttempts int
	backoff     time.Duration // first wait; doubles up to maxBackoff
	maxBackoff  time.Duration
	sleep       func(ctx context.Context, d time.Duration) error
}

// postResult is the outcome of one body, over all its attempts.
type postResult struct {
	accepted, rejected int
	retries503         int // 503 (and 429/502/504) answers that were retried
	retriesOther       int // transport errors that were retried
	rejections         []string
	elapsed            time.Duration // of the successful attempt
}

// retried reports whether the body may have been stored more than once: a
// retry repeats records an earlier attempt may have written in part.
func (r postResult) retried() bool { return r.retries503+r.retriesOther > 0 }

// ingestResponse is the part of the answer the load generator reads; the
// per-record results are decoded only when some record was rejected.
type ingestResponse struct {
	Accepted int             `json:"accepted"`
	Rejected int             `json:"rejected"`
	Results  json.RawMessage `json:"results"`
}

type ingestResult struct {
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Status string `json:"status"`
	Errors []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// post sends body until it is answered 202 or 422, an answer that must not
// be retried comes, the attempts run out or ctx ends.
func (p *poster) post(ctx context.Context, body []byte) (postResult, error) {
	var res postResult
	wait := p.backoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, header, respBody, err := p.do(ctx, body)
		var retryAfter time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if attempt >= p.maxAttempts {
				return res, fmt.Errorf("post usage: %w (after %d attempts)", err, attempt)
			}
			res.retriesOther++
		case status == http.StatusAccepted || status == http.StatusUnprocessableEntity:
			res.elapsed = time.Since(start)
			return res, res.decode(respBody)
		case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests ||
			status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
			if attempt >= p.maxAttempts {
				return res, fmt.Errorf("post usage: %d %s after %d attempts: %s", status, http.StatusText(status), attempt, snippet(respBody))
			}
			res.retries503++
			retryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
		default:
			return res, fmt.Errorf("post usage: %d %s: %s", status, http.StatusText(status), snippet(respBody))
		}
		if err := p.sleep(ctx, max(wait, retryAfter)); err != nil {
			return res, err
		}
		wait = min(wait*2, p.maxBackoff)
	}
}

func (p *poster) do(ctx context.Context, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	} else {
		req.Header.Set("Kakin-Tenant", p.tenant)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

func (r *postResult) decode(body []byte) error {
	var ir ingestResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		return fmt.Errorf("post usage: undecodable answer: %w: %s", err, snippet(body))
	}
	r.accepted, r.rejected = ir.Accepted, ir.Rejected
	if ir.Rejected == 0 {
		return nil
	}
	var results []ingestResult
	if err := json.Unmarshal(ir.Results, &results); err != nil {
		return fmt.Errorf("post usage: undecodable results: %w", err)
	}
	for _, x := range results {
		if x.Status != "rejected" || len(r.rejections) == 3 {
			continue
		}
		var why []string
		for _, e := range x.Errors {
			why = append(why, strings.TrimPrefix(e.Field+": "+e.Reason, ": "))
		}
		r.rejections = append(r.rejections, strings.TrimSpace(fmt.Sprintf("record %d %s", x.Index, x.ID))+": "+strings.Join(why, "; "))
	}
	return nil
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
