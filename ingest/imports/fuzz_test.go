package imports

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/ingest"
)

// FuzzSplitCSVLine checks splitCSVLine against encoding/csv on the lines it
// is given (one line of a file: no line break; a trailing CR is the line
// reader's to strip, and a blank line is skipped before it): both accept
// the line with the same fields, or both refuse it.
func FuzzSplitCSVLine(f *testing.F) {
	for _, s := range []string{
		`a,b,c`, `a,,c,`, `"a,b","say ""hi""",c`, `"",x`, `"open`, `"a"b,c`, `a"b,c`, ` a , b `,
		`"a""`, `""""`, `,`, `"",""`, "a\rb", `"a` + "\r" + `b"`, "\xff,\xfe", `"é",日本`, ` "a"`, `"a" `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := splitCSVLine(line, nil)
		if bytes.IndexByte(line, '\n') >= 0 || bytes.HasSuffix(line, []byte("\r")) || blank(line) {
			return // the line reader never hands such a line over
		}
		r := csv.NewReader(bytes.NewReader(line))
		r.FieldsPerRecord = -1
		want, werr := r.Read()
		if werr == nil {
			if _, eof := r.Read(); eof != io.EOF { // one line is one record
				werr = errors.New("more than one record")
			}
		}
		switch {
		case (err == nil) != (werr == nil):
			t.Fatalf("%q: splitCSVLine %q, %v; encoding/csv %q, %v", line, got, err, want, werr)
		case err == nil && !slices.Equal(got, want):
			t.Fatalf("%q: splitCSVLine %q, encoding/csv %q", line, got, want)
		}
	})
}

// FuzzReader reads arbitrary CSV and NDJSON usage files. No panic; the line
// numbers grow; every record is a valid event or carries at least one
// error; and the file's records are as many as recordCounter (the count an
// upload is announced with) says.
func FuzzReader(f *testing.F) {
	const header = "id,customer,element,quantity,time,contract,attr.region\n"
	for _, s := range []struct {
		file string
		csv  bool
	}{
		{header + "e1,c1,api_calls,2.5,2026-11-01T10:00:00Z,,jp\r\n\ne2,c1,api_calls,x,,k,\n", true},
		{header + `"e,1",c1,api_calls,"1",2026-11-01T10:00:00+09:00,"",""` + "\n  \n\"bad\n", true},
		{"ID,Customer,Element,Quantity,Time\ne1,c1,gb,1,2026-11-01T10:00:00Z", true},
		{"id,id\n", true},
		{"\xef\xbb\xbf" + header + "a,b", true},
		{`{"id":"e1","customer":"c1","element":"api_calls","quantity":1,"time":"2026-11-01T10:00:00Z"}` + "\n\n{}\nnot json\r\n", false},
		{"\t\n \r\n", false},
	} {
		f.Add([]byte(s.file), s.csv)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, file []byte, isCSV bool) {
		format := map[bool]string{true: FormatCSV, false: FormatNDJSON}[isCSV]
		var counter recordCounter
		counter.Write(file)
		want := counter.count()
		rd, err := NewReader(bytes.NewReader(file), format, "acme", now, ingest.DefaultLimits)
		if err != nil {
			if !isCSV {
				t.Fatalf("NDJSON reader refused: %v", err)
			}
			return // no header or an invalid one: an upload is refused
		}
		if isCSV {
			want-- // the header
		}
		var n, last uint64
		for {
			line, ev, errs, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
			if line <= last {
				t.Fatalf("line %d after line %d", line, last)
			}
			last = line
			n++
			if len(errs) == 0 && (ev.ID == "" || ev.Customer == "" || ev.Element == "" || ev.Time.IsZero() || ev.Tenant != "acme") {
				t.Fatalf("line %d: incomplete event %+v without errors", line, ev)
			}
		}
		if n != want {
			t.Fatalf("%d records read, recordCounter counts %d", n, want)
		}
	})
}
