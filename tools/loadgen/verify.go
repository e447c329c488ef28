package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Verification compares what ClickHouse holds for a run with what the real
// rater gives for what was sent.
type Verification struct {
	Exact               bool            `json:"exact"`
	DuplicateCheck      string          `json:"duplicate_check"` // "==", or ">=" when a retry may have stored records twice
	ExpectedLines       uint64          `json:"expected_lines"`
	GotLines            uint64          `json:"got_lines"`
	ExpectedDuplicates  uint64          `json:"expected_duplicates"`
	GotDuplicates       uint64          `json:"got_duplicates"`
	ExpectedAmount      decimal.Decimal `json:"expected_amount"`
	GotAmount           decimal.Decimal `json:"got_amount"`
	Customers           int             `json:"customers"` // expected customers with lines, probe customer included
	MismatchedCustomers int             `json:"mismatched_customers"`
	Mismatches          []Mismatch      `json:"mismatches,omitempty"` // the first few, by name
	Unrated             uint64          `json:"unrated"`
	DrainSeconds        *float64        `json:"drain_seconds"` // last ack → all totals queryable; null if never
	TimedOut            bool            `json:"timed_out"`
}

// Mismatch is one customer whose total differs.
type Mismatch struct {
	Customer string          `json:"customer"`
	Expected decimal.Decimal `json:"expected"`
	Got      decimal.Decimal `json:"got"`
}

const maxMismatches = 10

// Problem describes why v is not exact, naming the first customers that
// differ.
func (v Verification) Problem() string { return v.problem(true) }

func (v Verification) problem(names bool) string {
	if v.Exact {
		return ""
	}
	var parts []string
	if v.GotLines != v.ExpectedLines {
		parts = append(parts, fmt.Sprintf("%d rated lines, expected %d", v.GotLines, v.ExpectedLines))
	}
	if !v.duplicatesOK() {
		parts = append(parts, fmt.Sprintf("%d duplicates, expected %s %d", v.GotDuplicates, v.DuplicateCheck, v.ExpectedDuplicates))
	}
	if v.MismatchedCustomers > 0 && !names {
		parts = append(parts, fmt.Sprintf("%d of %d customers differ", v.MismatchedCustomers, v.Customers))
	} else if v.MismatchedCustomers > 0 {
		var first []string
		for _, m := range v.Mismatches[:min(5, len(v.Mismatches))] {
			first = append(first, fmt.Sprintf("%s expected %s got %s", m.Customer, m.Expected, m.Got))
		}
		parts = append(parts, fmt.Sprintf("%d of %d customers differ (%s)", v.MismatchedCustomers, v.Customers, strings.Join(first, ", ")))
	}
	if v.Unrated > 0 {
		parts = append(parts, fmt.Sprintf("%d records unrated", v.Unrated))
	}
	msg := "totals differ: " + strings.Join(parts, "; ")
	if v.TimedOut {
		msg += " (timed out waiting)"
	}
	return msg
}

func (v Verification) duplicatesOK() bool {
	if v.DuplicateCheck == ">=" {
		return v.GotDuplicates >= v.ExpectedDuplicates
	}
	return v.GotDuplicates == v.ExpectedDuplicates
}

// verify polls the store until it holds exactly exp for the run, a
// difference shows that can no longer go away, or timeout passes. Counts
// under FINAL only grow, so more lines (or, when exact, more duplicates) than
// expected end the wait at once; so do complete line and duplicate counts
// with a customer total that differs. The per-customer totals are read only
// once the counts are complete, or at the end. It returns an error only when
// ctx ends.
func verify(ctx context.Context, st Store, tenant, run string, exp Expected, dupAtLeast bool,
	sendEnd time.Time, timeout, interval time.Duration, log *slog.Logger) (Verification, error) {
	v := Verification{DuplicateCheck: "==", ExpectedLines: exp.Lines, ExpectedDuplicates: exp.Duplicates,
		ExpectedAmount: exp.Total, Customers: len(exp.PerCustomer)}
	if dupAtLeast {
		v.DuplicateCheck = ">="
	}
	prefix := run + "-"
	deadline := time.Now().Add(timeout)
	var lastLog, lastWarn time.Time
	warn := func(what string, err error) {
		if time.Since(lastWarn) > 5*time.Second {
			log.Warn("verify: "+what+" failed", "err", err)
			lastWarn = time.Now()
		}
	}
	for {
		checked := time.Now()
		timedOut := checked.After(deadline)
		// The exact counts (FINAL) cost ClickHouse far more than the
		// stored rows; fewer rows than expected lines means fewer lines.
		if stored, err := st.StoredLines(ctx, tenant, prefix); err == nil && stored < exp.Lines && !timedOut {
			if time.Since(lastLog) > 2*time.Second {
				log.Info("waiting for totals", "stored_lines", stored, "expected_lines", exp.Lines)
				lastLog = time.Now()
			}
			if err := sleepCtx(ctx, interval); err != nil {
				return v, err
			}
			continue
		}
		lines, err := st.Lines(ctx, tenant, prefix)
		var dups uint64
		if err == nil {
			dups, err = st.Duplicates(ctx, tenant, prefix)
		}
		if err != nil {
			if ctx.Err() != nil {
				return v, ctx.Err()
			}
			warn("count query", err)
			if timedOut {
				v.TimedOut = true
				break
			}
		} else {
			v.GotLines, v.GotDuplicates = lines, dups
			complete := lines == exp.Lines && v.duplicatesOK()
			hopeless := lines > exp.Lines || (!dupAtLeast && dups > exp.Duplicates)
			if complete || hopeless || timedOut {
				got, err := st.CustomerTotals(ctx, tenant, prefix)
				if err == nil {
					v.compare(exp.PerCustomer, got)
					if complete && v.MismatchedCustomers == 0 {
						v.Exact = true
						d := round3(checked.Sub(sendEnd).Seconds())
						v.DrainSeconds = &d
					}
					v.TimedOut = timedOut && !complete && !hopeless
					break
				}
				if ctx.Err() != nil {
					return v, ctx.Err()
				}
				warn("totals query", err)
				if timedOut {
					v.TimedOut = true
					break
				}
			} else if time.Since(lastLog) > 2*time.Second {
				log.Info("waiting for totals", "lines", lines, "expected_lines", exp.Lines,
					"duplicates", dups, "expected_duplicates", exp.Duplicates)
				lastLog = time.Now()
			}
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return v, err
		}
	}
	if n, err := st.Unrated(ctx, tenant, prefix); err == nil {
		v.Unrated = n
		if n > 0 {
			v.Exact = false
		}
	}
	return v, nil
}

// compare fills the amount and mismatch fields from the per-customer totals.
// A customer missing on either side counts as zero there.
func (v *Verification) compare(want, got map[string]decimal.Decimal) {
	v.GotAmount = decimal.Zero
	names := make([]string, 0, len(want)+len(got))
	for c := range want {
		names = append(names, c)
	}
	for c, amt := range got {
		v.GotAmount = v.GotAmount.Add(amt)
		if _, ok := want[c]; !ok {
			names = append(names, c)
		}
	}
	slices.Sort(names)
	v.MismatchedCustomers, v.Mismatches = 0, nil
	for _, c := range names {
		w, g := want[c], got[c]
		if !w.Equal(g) {
			v.MismatchedCustomers++
			if len(v.Mismatches) < maxMismatches {
				v.Mismatches = append(v.Mismatches, Mismatch{Customer: c, Expected: w, Got: g})
			}
		}
	}
}
