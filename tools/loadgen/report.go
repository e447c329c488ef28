package loadgen

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the short human-readable report of a run.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	rate := "unlimited"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f/s", r.TargetRate)
	}
	share := 0.0
	if r.UniqueEvents > 0 {
		share = 100 * float64(r.DuplicatesSent) / float64(r.UniqueEvents)
	}
	fmt.Fprintf(&b, "kakin loadgen  run %s  tenant %s  %s  seed %d\n", r.RunID, r.Tenant, r.URL, r.Seed)
	fmt.Fprintf(&b, "  events     %d unique + %d duplicates (%.2f%%) for %d customers, batch %d, concurrency %d, target %s\n",
		r.UniqueEvents, r.DuplicatesSent, share, r.Customers, r.Batch, r.Concurrency, rate)
	fmt.Fprintf(&b, "  sending    %.3fs, %d requests, %d accepted (%.0f events/s), %d rejected, %d retries after 503, %d after errors\n",
		r.SendSeconds, r.Requests, r.Accepted, r.AcceptedPerSecond, r.Rejected, r.Retries503, r.RetriesError)
	fmt.Fprintf(&b, "  requests   p50 %.1fms  p99 %.1fms  max %.1fms\n",
		r.RequestLatency.P50ms, r.RequestLatency.P99ms, r.RequestLatency.Maxms)
	l := r.IngestToQueryable
	fmt.Fprintf(&b, "  latency    ingest→queryable p50 %.0fms  p99 %.0fms  max %.0fms  (%d of %d probes seen; resolution: %.0fms poll interval)\n",
		l.P50ms, l.P99ms, l.Maxms, l.Count, r.Probes, r.PollIntervalMs)
	lo := r.IngestToQueryableLower
	fmt.Fprintf(&b, "             at least p50 %.0fms  p99 %.0fms  (from the last poll that did not see each probe)\n", lo.P50ms, lo.P99ms)
	v := r.Verification
	if v.DrainSeconds != nil {
		fmt.Fprintf(&b, "  drain      %.3fs from the last ack until all totals were queryable\n", *v.DrainSeconds)
	} else {
		fmt.Fprintf(&b, "  drain      not complete\n")
	}
	if v.Exact {
		fmt.Fprintf(&b, "  totals: exact — %d lines, %d duplicates (check %s), amount %s over %d customers\n",
			v.GotLines, v.GotDuplicates, v.DuplicateCheck, v.GotAmount, v.Customers)
		if v.DuplicateCheck == ">=" {
			fmt.Fprintf(&b, "  note: some requests were retried, so records an attempt had stored in part may be counted as duplicates; duplicates were checked with >= %d\n",
				v.ExpectedDuplicates)
		}
	} else if v.ExpectedLines > 0 || v.Customers > 0 {
		fmt.Fprintf(&b, "  totals: MISMATCH — %s\n", v.problem(false))
		fmt.Fprintf(&b, "          amount expected %s got %s\n", v.ExpectedAmount, v.GotAmount)
		for _, m := range v.Mismatches {
			fmt.Fprintf(&b, "          %s: expected %s got %s\n", m.Customer, m.Expected, m.Got)
		}
	} else {
		fmt.Fprintf(&b, "  totals: not checked\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
