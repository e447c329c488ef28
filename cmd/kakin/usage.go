package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kakin-dev/kakin/app"
)

const usageUsage = `kakin usage send -f FILE [--mode atomic|partial] [--url URL] [--client-id ID --client-secret S | --token T | --tenant T]

Uploads a CSV or NDJSON file of usage records to POST /v1/usage/imports with
a progress bar on stderr, waits for the import job and prints its result.
Exits non-zero when the job failed or was cancelled.
`

// runUsage dispatches the usage subcommands.
func runUsage(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "send" {
		fmt.Fprint(os.Stderr, usageUsage)
		return errors.New("unknown usage command (want: send)")
	}
	return runUsageSend(ctx, args[1:], os.Stdout, os.Stderr)
}

// jobView mirrors jobs.View.
type jobView struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"`
	Status          string          `json:"status"`
	Params          json.RawMessage `json:"params"`
	Total           uint64          `json:"total"`
	Processed       uint64          `json:"processed"`
	Accepted        uint64          `json:"accepted"`
	Rejected        uint64          `json:"rejected"`
	Error           string          `json:"error"`
	CancelRequested bool            `json:"cancel_requested"`
	Attempts        uint32          `json:"attempts"`
	ErrorsURL       string          `json:"errors_url"`
}

func (j jobView) final() bool {
	return j.Status == "completed" || j.Status == "failed" || j.Status == "cancelled"
}

// usageClient talks to one Kakin API as one caller.
type usageClient struct {
	base   string
	token  string
	tenant string // --dev-insecure servers: the Kakin-Tenant header
	http   *http.Client
}

func (c *usageClient) do(ctx context.Context, method, path string, body io.Reader, size int64, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	} else if c.tenant != "" {
		req.Header.Set("Kakin-Tenant", c.tenant)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return c.http.Do(req)
}

// problemText renders an error answer.
func problemText(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Errors []struct {
			Field  string `json:"field"`
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &p) != nil || p.Code == "" {
		return resp.Status + ": " + strings.TrimSpace(string(b))
	}
	s := resp.Status + ": " + p.Code + ": " + p.Detail
	for _, e := range p.Errors {
		s += fmt.Sprintf("\n  %s: %s", e.Field, e.Reason)
	}
	return s
}

func runUsageSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kakin usage send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		file, mode, format, baseURL, clientID, clientSecret, token, ten string
		poll, timeout                                                   time.Duration
		quiet, jsonOut                                                  bool
		showErrors                                                      int
	)
	fs.StringVar(&file, "f", "", "the file to import: CSV (*.csv) or NDJSON (*.ndjson, *.jsonl)")
	fs.StringVar(&mode, "mode", "partial", "atomic (any invalid record rejects the file) or partial (valid records in, invalid ones reported)")
	fs.StringVar(&format, "format", "", "csv or ndjson (default: from the file name)")
	fs.StringVar(&baseURL, "url", "http://127.0.0.1:8080", "Kakin API base URL")
	fs.StringVar(&clientID, "client-id", "", "API client (needs usage:write, and usage:read to follow the job)")
	fs.StringVar(&clientSecret, "client-secret", "", "the API client's secret")
	fs.StringVar(&token, "token", "", "an access token instead of client credentials")
	fs.StringVar(&ten, "tenant", "", "tenant for a server in --dev-insecure mode (sent as Kakin-Tenant)")
	fs.DurationVar(&poll, "poll", time.Second, "how often the job is polled")
	fs.DurationVar(&timeout, "timeout", 0, "give up waiting for the job after this long (0: wait until it ends)")
	fs.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	fs.BoolVar(&jsonOut, "json", false, "print the final job as JSON")
	fs.IntVar(&showErrors, "show-errors", 10, "how many lines of the error report to print")
	if err := app.ParseFlags(fs, args); err != nil {
		return err
	}
	if file == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-f FILE is required")
	}
	if format == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv":
			format = "csv"
		case ".ndjson", ".jsonl":
			format = "ndjson"
		default:
			return fmt.Errorf("cannot tell the format of %s from its name; pass --format csv or --format ndjson", file)
		}
	}
	contentType := map[string]string{"csv": "text/csv", "ndjson": "application/x-ndjson"}[format]
	if contentType == "" {
		return fmt.Errorf("--format %q: want csv or ndjson", format)
	}
	baseURL = strings.TrimRight(baseURL, "/")
	c := &usageClient{base: baseURL, token: token, tenant: ten, http: &http.Client{}}
	if clientID != "" {
		tok, err := fetchToken(ctx, baseURL, clientID, clientSecret)
		if err != nil {
			return err
		}
		c.token = tok
	}

	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// Progress goes to stderr on one line, redrawn in place; it is ended
	// (final redraw, newline) before anything else is printed, and before
	// an error is returned for the caller to print.
	status := &statusLine{w: stderr, quiet: quiet}
	defer status.end()
	bar := newProgressBar(status, filepath.Base(file), st.Size())
	body := &countingReader{r: bufio.NewReaderSize(f, 256<<10), n: &bar.sent}
	stopBar := bar.start()
	resp, err := c.do(ctx, http.MethodPost, "/v1/usage/imports?mode="+mode, body, st.Size(), map[string]string{"Content-Type": contentType,
		// The file's name travels with its records (usage_records.import_file).
		"Content-Disposition": mime.FormatMediaType("attachment", map[string]string{"filename": filepath.Base(file)})})
	stopBar()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		defer resp.Body.Close()
		return fmt.Errorf("upload refused: %s", problemText(resp))
	}
	var acc struct {
		Size              int64   `json:"size"`
		CheckImportStatus string  `json:"checkImportStatus"`
		Job               jobView `json:"job"`
	}
	err = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("upload answer: %w", err)
	}
	status.println("uploaded %s (%d bytes): job %s, %d records", file, acc.Size, acc.Job.ID, acc.Job.Total)

	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	job := acc.Job
	for !job.final() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for job %s (%s, %d/%d records): %w; follow it with GET %s%s",
				job.ID, job.Status, job.Processed, job.Total, ctx.Err(), baseURL, acc.CheckImportStatus)
		case <-time.After(poll):
		}
		resp, err := c.do(ctx, http.MethodGet, acc.CheckImportStatus, nil, 0, nil)
		if err != nil {
			status.println("poll: %v (retrying)", err)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			msg := problemText(resp)
			resp.Body.Close()
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound {
				return fmt.Errorf("cannot follow job %s: %s", job.ID, msg)
			}
			status.println("poll: %s (retrying)", msg)
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&job)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("job answer: %w", err)
		}
		status.draw("%s %s: %d/%d records, %d accepted, %d rejected   ", job.ID, job.Status, job.Processed, job.Total, job.Accepted, job.Rejected)
	}
	status.end() // the result starts on a line of its own
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(job)
	} else {
		fmt.Fprintf(stdout, "job %s %s: %d records, %d accepted, %d rejected\n", job.ID, job.Status, job.Total, job.Accepted, job.Rejected)
		if job.Error != "" {
			fmt.Fprintf(stdout, "reason: %s\n", job.Error)
		}
	}
	if job.Rejected > 0 && !jsonOut {
		printErrors(ctx, c, job, showErrors, stdout)
		fmt.Fprintf(stdout, "full error report (CSV): GET %s%s\n", baseURL, job.ErrorsURL)
	}
	if job.Status != "completed" {
		return fmt.Errorf("job %s %s", job.ID, job.Status)
	}
	return nil
}

// printErrors prints the first n rows of the job's error report.
func printErrors(ctx context.Context, c *usageClient, job jobView, n int, w io.Writer) {
	if n <= 0 {
		return
	}
	resp, err := c.do(ctx, http.MethodGet, job.ErrorsURL, nil, 0, map[string]string{"Accept": "application/x-ndjson"})
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	fmt.Fprintln(w, "first errors:")
	dec := json.NewDecoder(resp.Body)
	for i := 0; i < n; i++ {
		var e struct {
			Line     uint64 `json:"line"`
			RecordID string `json:"record_id"`
			Field    string `json:"field"`
			Reason   string `json:"reason"`
		}
		if dec.Decode(&e) != nil {
			break
		}
		where := fmt.Sprintf("line %d", e.Line)
		if e.RecordID != "" {
			where += " (" + e.RecordID + ")"
		}
		if e.Field != "" {
			fmt.Fprintf(w, "  %s: %s: %s\n", where, e.Field, e.Reason)
		} else {
			fmt.Fprintf(w, "  %s: %s\n", where, e.Reason)
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// statusLine is the progress line on stderr: drawn again in place ("\r")
// until ended with a newline. Whatever else is printed first ends it, so no
// message or result is ever appended to a progress line.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool // draw nothing (messages are still printed)
	open  bool // a line is drawn and not ended yet
}

// draw replaces the current progress line.
func (s *statusLine) draw(format string, args ...any) {
	if s.quiet {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r"+format, args...)
	s.open = true
}

// end ends the progress line, if one is drawn.
func (s *statusLine) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked()
}

func (s *statusLine) endLocked() {
	if s.open {
		fmt.Fprintln(s.w)
		s.open = false
	}
}

// println prints a message on a line of its own, after the progress line.
func (s *statusLine) println(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked()
	fmt.Fprintf(s.w, format+"\n", args...)
}

// progressBar draws upload progress (bytes sent) on the status line.
type progressBar struct {
	line  *statusLine
	name  string
	total int64
	sent  atomic.Int64
	began time.Time
}

func newProgressBar(line *statusLine, name string, total int64) *progressBar {
	return &progressBar{line: line, name: name, total: total}
}

// start draws the bar every 200 ms until the returned stop is called; stop
// returns once the bar is drawn a last time (with every byte sent) and its
// line is ended.
func (b *progressBar) start() (stop func()) {
	b.began = time.Now()
	if b.line.quiet {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.draw()
			}
		}
	}()
	return func() {
		close(done)
		<-finished // no tick draws after this
		b.draw()
		b.line.end()
	}
}

func (b *progressBar) draw() {
	sent := b.sent.Load()
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(sent)/float64(b.total), 1) // a file that grew while sent
	}
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	rate := float64(sent) / max(time.Since(b.began).Seconds(), 0.001)
	b.line.draw("upload %s [%s] %5.1f%% %s/%s %s/s ", b.name, bar, 100*frac, mib(sent), mib(b.total), mib(int64(rate)))
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }
