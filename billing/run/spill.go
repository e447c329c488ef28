package run

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kakin-dev/kakin/billing/billingdb"
)

// spill keeps a run's computed receivable writes in a temporary file, in
// the order they were computed, so that a run holds one receivable at a
// time while it computes, checks the detail-line limit over all of them
// before writing any, then writes them back in chunks of bounded size.
// The file is gob: every field of a write round-trips exactly (decimals
// with their exponent), so what is written is what was computed.
type spill struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
	n   int
}

func newSpill() (*spill, error) {
	f, err := os.CreateTemp("", "kakin-billing-run-*")
	if err != nil {
		return nil, fmt.Errorf("billing run spill: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	return &spill{f: f, w: w, enc: gob.NewEncoder(w)}, nil
}

// add appends one write.
func (s *spill) add(w *billingdb.Write) error {
	if err := s.enc.Encode(w); err != nil {
		return fmt.Errorf("billing run spill: %w", err)
	}
	s.n++
	return nil
}

// reader flushes what was added and returns a reader of the writes from
// the first.
func (s *spill) reader() (*spillReader, error) {
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("billing run spill: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("billing run spill: %w", err)
	}
	return &spillReader{dec: gob.NewDecoder(bufio.NewReaderSize(s.f, 1<<20)), left: s.n}, nil
}

// close removes the file.
func (s *spill) close() {
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}

type spillReader struct {
	dec  *gob.Decoder
	left int
}

// next returns the following writes, as many as hold at most maxLines
// lines (at least one), or none at the end.
func (r *spillReader) next(maxLines int) ([]billingdb.Write, error) {
	var out []billingdb.Write
	lines := 0
	for r.left > 0 && (len(out) == 0 || lines < maxLines) {
		var w billingdb.Write
		if err := r.dec.Decode(&w); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("billing run spill: %w", err)
		}
		r.left--
		lines += len(w.Lines) + len(w.Gone)
		out = append(out, w)
	}
	return out, nil
}
