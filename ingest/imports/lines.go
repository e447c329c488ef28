package imports

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes is the longest line (record) an import file may have.
const MaxLineBytes = 1 << 20

// errLineTooLong is the problem of a line over MaxLineBytes.
var errLineTooLong = fmt.Errorf("line is longer than %d bytes", MaxLineBytes)

// lineReader reads an import file line by line, knowing each line's number
// and the file offset after it, without ever holding more than one line.
type lineReader struct {
	r      *bufio.Reader
	long   []byte
	offset int64  // file offset after the last line returned
	line   uint64 // number of the last line returned (1-based)
}

// newLineReader reads r, positioned at file offset offset, which is the
// start of line line+1.
func newLineReader(r io.Reader, offset int64, line uint64) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), offset: offset, line: line}
}

// next returns the next non-blank line without its line break (valid until
// the next call), or errLineTooLong for a line over the limit (which is then
// skipped), or io.EOF.
func (lr *lineReader) next() ([]byte, error) {
	for {
		b, tooLong, n, err := lr.readLine()
		if n == 0 && err != nil {
			return nil, err
		}
		lr.offset += int64(n)
		lr.line++
		if tooLong {
			return nil, errLineTooLong
		}
		if blank(b) {
			if err != nil {
				return nil, err
			}
			continue
		}
		return b, nil
	}
}

// readLine reads one line; n counts every byte consumed, line break included.
func (lr *lineReader) readLine() (line []byte, tooLong bool, n int, err error) {
	b, err := lr.r.ReadSlice('\n')
	n = len(b)
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.long = append(lr.long[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = lr.r.ReadSlice('\n')
			n += len(b)
			if len(lr.long) <= MaxLineBytes {
				lr.long = append(lr.long, b...)
			}
		}
		b = lr.long
		if len(b) > MaxLineBytes+2 {
			tooLong = true
		}
	}
	if err == io.EOF && n > 0 {
		err = nil // a last line without a line break
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > MaxLineBytes {
		tooLong = true
	}
	return b, tooLong, n, err
}

// blank reports whether a line holds only ASCII white space, the lines
// recordCounter does not count. Other Unicode spaces (U+00A0, U+2028…) make
// a record, which is then rejected, rather than a line silently skipped.
func blank(line []byte) bool {
	for _, b := range line {
		switch b {
		case ' ', '\t', '\r', '\v', '\f':
		default:
			return false
		}
	}
	return true
}

// recordCounter counts the non-blank lines of what is written to it: the
// records of an import file (for CSV, plus its header).
type recordCounter struct {
	lines    uint64
	nonBlank bool
}

func (c *recordCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch b {
		case '\n':
			if c.nonBlank {
				c.lines++
			}
			c.nonBlank = false
		case ' ', '\t', '\r', '\v', '\f':
		default:
			c.nonBlank = true
		}
	}
	return len(p), nil
}

// count is the number of non-blank lines, a last one without a line break
// included.
func (c *recordCounter) count() uint64 {
	if c.nonBlank {
		return c.lines + 1
	}
	return c.lines
}
