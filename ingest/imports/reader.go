package imports

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/schemas"
)

// recordParser turns one line of a usage file into a record, validated
// exactly as POST /v1/usage validates it. Imports and `kakin rate` share it.
type recordParser struct {
	format string
	cols   csvColumns // CSV only
	row    []string
	tenant string
	now    time.Time
	lim    ingest.Limits
}

// parse reads one line as a record: the event, its id (as far as it could be
// read) and what is wrong with it.
func (p *recordParser) parse(line []byte) (schemas.UsageEvent, string, []httpapi.FieldError) {
	if p.format == FormatNDJSON {
		ev, errs := ingest.ParseRecord(line, p.tenant, p.now, p.lim)
		return ev, ev.ID, errs
	}
	row, err := splitCSVLine(line, p.row)
	if err != nil {
		return schemas.UsageEvent{}, "", []httpapi.FieldError{{Reason: "malformed CSV: " + err.Error()}}
	}
	p.row = row
	if len(row) != p.cols.n {
		id := ""
		if p.cols.id < len(row) {
			id = row[p.cols.id]
		}
		return schemas.UsageEvent{}, id, []httpapi.FieldError{{Reason: fmt.Sprintf("has %d fields; the header has %d", len(row), p.cols.n)}}
	}
	fields := p.cols.fields(row)
	ev, errs := ingest.ValidateFields(fields, p.tenant, p.now, p.lim)
	return ev, fields.ID, errs
}

// Reader reads the records of a CSV (with its header row) or NDJSON usage
// file, one at a time, without holding the file in memory.
type Reader struct {
	lr *lineReader
	p  recordParser
}

// NewReader starts reading a usage file of format (FormatCSV or
// FormatNDJSON) for tenant. now is the records' receive time and the
// reference of lim's time windows (zero limits disable them).
func NewReader(r io.Reader, format, tenant string, now time.Time, lim ingest.Limits) (*Reader, error) {
	if format != FormatCSV && format != FormatNDJSON {
		return nil, fmt.Errorf("usage file format %q: want %s or %s", format, FormatCSV, FormatNDJSON)
	}
	rd := &Reader{lr: newLineReader(r, 0, 0), p: recordParser{format: format, tenant: tenant, now: now, lim: lim}}
	if format == FormatCSV {
		line, err := rd.lr.next()
		if err != nil {
			return nil, fmt.Errorf("the file has no header row: %w", err)
		}
		cols, errs := parseHeader(line)
		if len(errs) > 0 {
			return nil, fmt.Errorf("invalid header: %s", errs[0].Reason)
		}
		rd.p.cols = cols
	}
	return rd, nil
}

// Next returns the next record and its line number (1-based, counting the
// header), with what is wrong with it if anything; io.EOF after the last.
func (r *Reader) Next() (line uint64, ev schemas.UsageEvent, errs []httpapi.FieldError, err error) {
	b, err := r.lr.next()
	if errors.Is(err, errLineTooLong) {
		return r.lr.line, schemas.UsageEvent{}, []httpapi.FieldError{{Reason: err.Error()}}, nil
	}
	if err != nil {
		return r.lr.line, schemas.UsageEvent{}, nil, err
	}
	ev, _, errs = r.p.parse(b)
	return r.lr.line, ev, errs, nil
}
