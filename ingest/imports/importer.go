package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/segmentio/kafka-go"
)

// Kind is the job kind of a usage import.
const Kind = "usage_import"

// The modes of an import.
const (
	ModePartial = "partial"
	ModeAtomic  = "atomic"
)

// The formats of an import file.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// Params are an import job's parameters, as GET /v1/jobs/{id} shows them.
type Params struct {
	Mode       string    `json:"mode"`
	Format     string    `json:"format"`
	Size       int64     `json:"size"` // bytes received
	Filename   string    `json:"filename,omitempty"`
	ReceivedAt time.Time `json:"received_at"` // every record's receive time
}

// checkpoint is an import's private resume state.
type checkpoint struct {
	// Phase is validate (atomic mode's first pass) or publish.
	Phase  string `json:"phase"`
	Offset int64  `json:"offset"` // file offset of the next line to read
	Line   uint64 `json:"line"`   // lines before Offset
	// Client and Limits are the uploader's, whose ingest budget the
	// publishing spends.
	Client string         `json:"client"`
	Limits tenants.Limits `json:"limits"`
}

const (
	phaseValidate = "validate"
	phasePublish  = "publish"
)

// EventLimiter spends ingest event budget (ratelimit.Limiter does).
type EventLimiter interface {
	AllowEvents(ctx context.Context, p auth.Principal, n int) (ratelimit.Decision, error)
}

// Config configures imports.
type Config struct {
	// Dir is where uploads are spooled (<Dir>/<tenant>/<job id>.<format>).
	// Every process that runs import jobs must see the same directory.
	Dir string
	// MaxBytes is the largest file accepted.
	MaxBytes int64
	// Producer writes to usage.raw with acks=all (the ingest writer).
	Producer ingest.Producer
	// Limits are the ingest record limits (age, future skew) records are
	// validated with.
	Limits ingest.Limits
	// Limiter, when set, makes publishing spend the uploader's ingest event
	// budget, waiting when it is used up.
	Limiter EventLimiter
	// Batch is records per Kafka write (default 2000).
	Batch int
	// CheckpointEvery is the longest time between checkpoints (default 1 s).
	CheckpointEvery time.Duration
	// PublishTimeout bounds the retries of one Kafka write before the run
	// gives up (a later run retries; default 2 min).
	PublishTimeout time.Duration
	// MaxReportedRecords caps the rejected records the error report lists
	// (default DefaultMaxReportedRecords); past it a last row says the
	// report stops there, and the job's counts still count every one.
	MaxReportedRecords uint64
	Log                *slog.Logger
	Metrics            *Metrics
}

// DefaultMaxReportedRecords is how many rejected records an import's error
// report lists at most: a file of garbage must not fill the job store.
const DefaultMaxReportedRecords = 100_000

func (c *Config) defaults() {
	if c.MaxReportedRecords == 0 {
		c.MaxReportedRecords = DefaultMaxReportedRecords
	}
	if c.Batch <= 0 {
		c.Batch = 2000
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 2 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// Importer runs usage_import jobs (a jobs.Handler).
type Importer struct{ c Config }

// NewImporter returns the import job handler.
func NewImporter(c Config) *Importer {
	c.defaults()
	return &Importer{c: c}
}

// spoolPath is where the upload of job id of tenant is kept.
func spoolPath(dir, tenant, id, format string) string {
	return filepath.Join(dir, tenant, id+"."+format)
}

// Finished deletes the job's spooled file.
func (im *Importer) Finished(j jobs.Job) {
	var p Params
	if json.Unmarshal(j.Params, &p) != nil || !jobs.ValidID(j.ID) {
		return
	}
	path := spoolPath(im.c.Dir, j.Tenant, j.ID, p.Format)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		im.c.Log.Warn("imports: spooled file not deleted", "path", path, "err", err)
	}
}

// Run processes (or resumes) an import.
func (im *Importer) Run(ctx context.Context, run *jobs.Run) (jobs.Outcome, error) {
	j := run.Job()
	var p Params
	var cp checkpoint
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return failed("internal error: unreadable job parameters: " + err.Error()), nil
	}
	if err := json.Unmarshal(j.Checkpoint, &cp); err != nil {
		return failed("internal error: unreadable checkpoint: " + err.Error()), nil
	}
	f, err := os.Open(spoolPath(im.c.Dir, j.Tenant, j.ID, p.Format))
	if errors.Is(err, os.ErrNotExist) {
		return failed("the uploaded file is no longer in the import directory of the process running the job " +
			"(processes that run imports must share --import-dir); upload the file again"), nil
	}
	if err != nil {
		return jobs.Outcome{}, fmt.Errorf("open spooled file: %w", err)
	}
	defer f.Close()
	w := &work{im: im, run: run, f: f, p: p, cp: cp, counts: j.Counts, tenant: j.Tenant,
		principal: auth.Principal{Tenant: j.Tenant, ClientID: cp.Client, Limits: cp.Limits},
		source:    &schemas.ImportSource{File: p.Filename, Job: j.ID}}
	if p.Format == FormatCSV {
		if err := w.readHeader(); err != nil {
			return failed(err.Error()), nil
		}
	}
	if cp.Phase == phaseValidate {
		out, done, err := w.pass(ctx, phaseValidate)
		if err != nil || done {
			return out, err
		}
		// Every record is valid: publish them all, from the first line again.
		w.cp.Phase, w.cp.Offset, w.cp.Line = phasePublish, w.dataOffset, w.dataLine
		if err := run.Save(ctx, w.counts, w.checkpointJSON()); err != nil {
			return jobs.Outcome{}, err
		}
	}
	out, _, err := w.pass(ctx, phasePublish)
	return out, err
}

func failed(reason string) jobs.Outcome {
	return jobs.Outcome{Status: jobs.StatusFailed, Error: reason}
}

// work is one run over an import file.
type work struct {
	im        *Importer
	run       *jobs.Run
	f         *os.File
	p         Params
	cp        checkpoint
	counts    jobs.Counts
	tenant    string
	principal auth.Principal
	// source is stamped on every record published: the upload's file name
	// and the job id (one value, shared read-only by the records).
	source *schemas.ImportSource

	cols       csvColumns
	dataOffset int64 // where the records start (after a CSV header)
	dataLine   uint64
	row        []string
}

func (w *work) checkpointJSON() json.RawMessage {
	b, _ := json.Marshal(w.cp)
	return b
}

// readHeader reads the CSV header (again, on every run).
func (w *work) readHeader() error {
	lr := newLineReader(w.f, 0, 0)
	line, err := lr.next()
	if err != nil {
		return fmt.Errorf("the file has no header row: %w", err)
	}
	cols, errs := parseHeader(line)
	if len(errs) > 0 {
		return fmt.Errorf("invalid header: %s", errs[0].Reason)
	}
	w.cols, w.dataOffset, w.dataLine = cols, lr.offset, lr.line
	if w.cp.Offset < w.dataOffset {
		w.cp.Offset, w.cp.Line = w.dataOffset, w.dataLine
	}
	return nil
}

// parse reads one line as a record.
func (w *work) parse(line []byte) (schemas.UsageEvent, string, []httpapi.FieldError) {
	p := recordParser{format: w.p.Format, cols: w.cols, row: w.row, tenant: w.tenant, now: w.p.ReceivedAt, lim: w.im.c.Limits}
	ev, id, errs := p.parse(line)
	w.row = p.row
	if len(errs) == 0 {
		ev.Import = w.source
	}
	return ev, id, errs
}

// pass reads the file from the checkpoint to the end. In phase validate it
// only reports invalid records; in phase publish it publishes the valid ones
// (and, in partial mode, reports the others). done tells that out is final.
func (w *work) pass(ctx context.Context, phase string) (out jobs.Outcome, done bool, err error) {
	atomic := w.p.Mode == ModeAtomic
	if _, err := w.f.Seek(w.cp.Offset, io.SeekStart); err != nil {
		return jobs.Outcome{}, false, fmt.Errorf("seek spooled file: %w", err)
	}
	lr := newLineReader(w.f, w.cp.Offset, w.cp.Line)
	var msgs []kafka.Message
	var errs []jobs.LineError
	lastSave := time.Now()

	// flush makes everything read so far durable and saves the checkpoint.
	flush := func() error {
		if len(msgs) > 0 {
			if err := w.publish(ctx, msgs); err != nil {
				return err
			}
			w.counts.Accepted += uint64(len(msgs))
			msgs = msgs[:0]
		}
		if len(errs) > 0 {
			if err := w.run.AddErrors(ctx, errs); err != nil {
				return err
			}
			errs = errs[:0]
		}
		w.cp.Offset, w.cp.Line = lr.offset, lr.line
		err := w.run.Save(ctx, w.counts, w.checkpointJSON())
		lastSave = time.Now() // the next checkpoint is CheckpointEvery after this one ended
		return err
	}

	for {
		if err := ctx.Err(); err != nil {
			return jobs.Outcome{}, false, err
		}
		line, rerr := lr.next()
		if errors.Is(rerr, io.EOF) {
			break
		}
		var ev schemas.UsageEvent
		var id string
		var ferrs []httpapi.FieldError
		switch {
		case errors.Is(rerr, errLineTooLong):
			ferrs = []httpapi.FieldError{{Reason: rerr.Error()}}
		case rerr != nil:
			return jobs.Outcome{}, false, fmt.Errorf("read spooled file: %w", rerr)
		default:
			ev, id, ferrs = w.parse(line)
		}
		counted := phase == phaseValidate || !atomic // atomic publish re-reads lines already counted
		if len(ferrs) > 0 {
			if phase == phasePublish && atomic {
				return failed(fmt.Sprintf("internal error: line %d was valid when checked and is not now: %s", lr.line, ferrs[0].Reason)), true, nil
			}
			switch max := w.im.c.MaxReportedRecords; {
			case w.counts.Rejected < max:
				for _, fe := range ferrs {
					errs = append(errs, jobs.LineError{Line: lr.line, RecordID: id, Field: fe.Field, Reason: fe.Reason})
				}
			case w.counts.Rejected == max:
				errs = append(errs, jobs.LineError{Line: lr.line, Reason: fmt.Sprintf(
					"the error report stops here: it lists the first %d rejected records; the job's rejected count has them all", max)})
			}
			w.counts.Rejected++
			w.im.c.Metrics.records.WithLabelValues("rejected").Inc()
		} else if phase == phasePublish {
			msg, err := ingest.Message(&ev)
			if err != nil {
				return jobs.Outcome{}, false, err
			}
			msgs = append(msgs, msg)
		}
		if counted {
			w.counts.Processed++
		}
		if len(msgs) >= w.im.c.Batch {
			if err := w.publish(ctx, msgs); err != nil {
				return jobs.Outcome{}, false, err
			}
			w.counts.Accepted += uint64(len(msgs))
			msgs = msgs[:0]
		}
		if len(errs) >= 10000 || time.Since(lastSave) >= w.im.c.CheckpointEvery {
			if err := flush(); err != nil {
				return jobs.Outcome{}, false, err
			}
			if cancel, err := w.run.CancelRequested(ctx); err == nil && cancel && (phase == phaseValidate || !atomic) {
				return jobs.Outcome{Status: jobs.StatusCancelled}, true, nil
			}
		}
	}
	if w.counts.Total < w.counts.Processed || phase == phaseValidate || !atomic {
		w.counts.Total = w.counts.Processed // exact now that the whole file was read
	}
	if err := flush(); err != nil {
		return jobs.Outcome{}, false, err
	}
	switch {
	case w.counts.Processed == 0:
		return failed("the file has no records"), true, nil
	case phase == phaseValidate && w.counts.Rejected > 0:
		return failed(fmt.Sprintf("%d of %d records are invalid; nothing was ingested (mode atomic); see the error report",
			w.counts.Rejected, w.counts.Processed)), true, nil
	case phase == phaseValidate:
		return jobs.Outcome{}, false, nil // go on to publish
	case w.counts.Accepted == 0:
		return failed(fmt.Sprintf("none of the %d records is valid; nothing was ingested; see the error report", w.counts.Rejected)), true, nil
	}
	return jobs.Outcome{Status: jobs.StatusCompleted}, true, nil
}

// publish writes msgs to usage.raw and returns once Kafka acknowledged all
// of them, spending the uploader's event budget first. It retries for
// PublishTimeout.
func (w *work) publish(ctx context.Context, msgs []kafka.Message) error {
	start := time.Now()
	if lim := w.im.c.Limiter; lim != nil {
		for rest := len(msgs); rest > 0; {
			n := rest
			for {
				d, _ := lim.AllowEvents(ctx, w.principal, n)
				if d.Allowed {
					break
				}
				if d.RetryAfter <= 0 { // more than the budget's burst: ask for less at a time
					if n = n / 2; n == 0 {
						return errors.New("the ingest event budget admits no events")
					}
					continue
				}
				w.im.c.Metrics.throttled.Add(d.RetryAfter.Seconds())
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d.RetryAfter):
				}
			}
			rest -= n
		}
	}
	deadline := time.Now().Add(w.im.c.PublishTimeout)
	backoff := 200 * time.Millisecond
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := w.im.c.Producer.WriteMessages(wctx, msgs...)
		cancel()
		if err == nil {
			break
		}
		w.im.c.Metrics.publishErrors.Inc()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the usage log did not acknowledge records for %s (last error: %v); %d records were published before",
				w.im.c.PublishTimeout, err, w.counts.Accepted)
		}
		w.im.c.Log.Warn("imports: kafka write failed; retrying", "tenant", w.tenant, "records", len(msgs), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	w.im.c.Metrics.records.WithLabelValues("accepted").Add(float64(len(msgs)))
	w.im.c.Metrics.batchSeconds.Observe(time.Since(start).Seconds())
	return nil
}
