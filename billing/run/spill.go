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

// spill keeps what a run computed (receivable writes, reconciliation keys)
// in a temporary file, in the order they were computed, so that a run holds
// one customer's at a time while it computes, checks the detail-line limit
// over all of them before writing any, then writes them back in chunks of
// bounded size. The file is gob: every field round-trips exactly (decimals
// with their exponent), so what is written is what was computed.
type spill[T any] struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
	n   int
}

func newSpill[T any]() (*spill[T], error) {
	f, err := os.CreateTemp("", "kakin-billing-run-*")
	if err != nil {
		return nil, fmt.Errorf("billing run spill: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	return &spill[T]{f: f, w: w, enc: gob.NewEncoder(w)}, nil
}

// add appends one value.
func (s *spill[T]) add(w *T) error {
	if err := s.enc.Encode(w); err != nil {
		return fmt.Errorf("billing run spill: %w", err)
	}
	s.n++
	return nil
}

// reader flushes what was added and returns a reader of the writes from
// the first.
func (s *spill[T]) reader() (*spillReader[T], error) {
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("billing run spill: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("billing run spill: %w", err)
	}
	return &spillReader[T]{dec: gob.NewDecoder(bufio.NewReaderSize(s.f, 1<<20)), left: s.n}, nil
}

// close removes the file.
func (s *spill[T]) close() {
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}

type spillReader[T any] struct {
	dec  *gob.Decoder
	left int
}

// next returns the following values, as many as weigh at most max
// together (at least one), or none at the end.
func (r *spillReader[T]) next(max int, weight func(*T) int) ([]T, error) {
	var out []T
	total := 0
	for r.left > 0 && (len(out) == 0 || total < max) {
		var v T
		if err := r.dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("billing run spill: %w", err)
		}
		r.left--
		total += weight(&v)
		out = append(out, v)
	}
	return out, nil
}

// writeLines weighs a write by its lines.
func writeLines(w *billingdb.Write) int { return len(w.Lines) + len(w.Gone) }

// one weighs every value 1.
func one[T any](*T) int { return 1 }
