package imports

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/ingest"
)

func TestSplitCSVLine(t *testing.T) {
	tests := []struct {
		line string
		want []string
		err  string
	}{
		{`a,b,c`, []string{"a", "b", "c"}, ""},
		{`a,,c,`, []string{"a", "", "c", ""}, ""},
		{``, []string{""}, ""},
		{`"a,b","say ""hi""",c`, []string{"a,b", `say "hi"`, "c"}, ""},
		{`"",x`, []string{"", "x"}, ""},
		{`"open`, nil, "unterminated"},
		{`"a"b,c`, nil, "after a quoted field"},
		{`a"b,c`, nil, "bare"},
		{` a , b `, []string{" a ", " b "}, ""},
	}
	for _, tt := range tests {
		got, err := splitCSVLine([]byte(tt.line), nil)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	c, errs := parseHeader([]byte("\xef\xbb\xbfID, Customer ,element,quantity,time,contract,attr.Region,attr.tier"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	row := []string{"e-1", "c", "x", "1.5", "2026-11-23T01:00:00Z", "", "jp", ""}
	f := c.fields(row)
	want := ingest.Fields{ID: "e-1", Customer: "c", Element: "x", Quantity: "1.5", Time: "2026-11-23T01:00:00Z",
		Attributes: map[string]string{"Region": "jp"}}
	if f.ID != want.ID || f.Customer != want.Customer || f.Contract != "" || len(f.Attributes) != 1 || f.Attributes["Region"] != "jp" {
		t.Errorf("fields = %+v, want %+v", f, want)
	}
	for _, bad := range []struct{ header, reason string }{
		{"id,customer,element,quantity", "required column time"},
		{"id,customer,element,quantity,time,colour", `unknown column "colour"`},
		{"id,customer,element,quantity,time,ID", "appears twice"},
		{"id,customer,element,quantity,time,attr.", "unknown column"},
		{`id,"customer`, "unterminated"},
	} {
		_, errs := parseHeader([]byte(bad.header))
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Reason, bad.reason)
		}
		if !found {
			t.Errorf("%q: errors %v, want one with %q", bad.header, errs, bad.reason)
		}
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+10)
	input := "first\r\n\n  \nsecond\n" + long + "\nthird"
	lr := newLineReader(strings.NewReader(input), 0, 0)
	type got struct {
		text   string
		line   uint64
		offset int64
		err    error
	}
	var out []got
	for {
		b, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		out = append(out, got{string(b), lr.line, lr.offset, err})
	}
	want := []got{
		{"first", 1, 7, nil},
		{"second", 4, 7 + 1 + 3 + 7, nil},
		{"", 5, 7 + 1 + 3 + 7 + int64(len(long)) + 1, errLineTooLong},
		{"third", 6, int64(len(input)), nil},
	}
	if len(out) != len(want) {
		t.Fatalf("got %d lines, want %d", len(out), len(want))
	}
	for i := range want {
		if out[i].text != want[i].text || out[i].line != want[i].line || out[i].offset != want[i].offset || !errors.Is(out[i].err, want[i].err) {
			t.Errorf("line %d: %+v, want %+v", i, out[i], want[i])
		}
	}
	// Resuming at a saved offset reads the same lines with the same numbers.
	lr2 := newLineReader(strings.NewReader(input[7:]), 7, 1)
	b, err := lr2.next()
	if err != nil || string(b) != "second" || lr2.line != 4 {
		t.Errorf("resumed read %q line %d %v", b, lr2.line, err)
	}
}

func TestRecordCounter(t *testing.T) {
	for in, want := range map[string]uint64{
		"":                  0,
		"a\nb\n":            2,
		"a\n\n  \r\nb":      2,
		"h\n" + "x\n" + " ": 2,
	} {
		var c recordCounter
		// In pieces, as io.Copy writes it.
		for _, part := range bytes.SplitAfter([]byte(in), []byte("\n")) {
			c.Write(part)
		}
		if got := c.count(); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}
