package run

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/kakin-dev/kakin/internal/jobs"
)

// CloseKind is the job kind of a period close.
const CloseKind = "billing_close"

// CloseParams are a close job's parameters.
type CloseParams struct {
	Period string `json:"period"` // YYYY-MM
}

// CloseOutcome is what a finished close job did (its checkpoint; the
// admin API shows it).
type CloseOutcome struct {
	Period      string `json:"period"`
	Finalised   uint64 `json:"finalised"`
	FirstSeq    uint64 `json:"first_seq,omitempty"`
	LastSeq     uint64 `json:"last_seq,omitempty"`
	Receivables uint64 `json:"recomputed"`
	Frozen      uint64 `json:"already_final"`
	Lines       uint64 `json:"lines"`
	Differences uint64 `json:"differences"`
	Pins        []Pin  `json:"stage_offsets,omitempty"`
}

// Outcome is the close's outcome for the API.
func (r CloseResult) Outcome(period string) CloseOutcome {
	return CloseOutcome{Period: period, Finalised: r.Finalised, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq,
		Receivables: r.Run.Receivables, Frozen: r.Run.Frozen, Lines: r.Run.Lines, Differences: r.Run.Differences, Pins: r.Pins}
}

// CloseJob runs period closes as jobs (internal/jobs). A close resumes by
// itself (closing again finishes what a crashed attempt left, numbers
// continuing gaplessly), so the job needs no checkpoint of its own until
// it is done; then the checkpoint is the close's outcome.
type CloseJob struct{ s *Service }

// NewCloseJob returns the close job handler.
func NewCloseJob(s *Service) *CloseJob { return &CloseJob{s: s} }

// Run closes the period. Errors a retry cannot get past (no catalogue, the
// pipeline behind its watermark, the detail-line limit) fail the job with
// their message; others end the attempt, and the runner resumes it.
func (h *CloseJob) Run(ctx context.Context, run *jobs.Run) (jobs.Outcome, error) {
	j := run.Job()
	var p CloseParams
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return jobs.Outcome{Status: jobs.StatusFailed, Error: "unreadable parameters: " + err.Error()}, nil
	}
	res, err := h.s.Close(ctx, j.Tenant, p.Period, j.CreatedBy)
	if err != nil {
		if errors.Is(err, ErrNoCatalogue) || errors.Is(err, ErrLagging) || errors.Is(err, ErrLimit) {
			return jobs.Outcome{Status: jobs.StatusFailed, Error: err.Error()}, nil
		}
		return jobs.Outcome{}, err
	}
	b, _ := json.Marshal(res.Outcome(p.Period))
	n := res.Finalised + res.Run.Frozen
	if err := run.Save(ctx, jobs.Counts{Total: n, Processed: n, Accepted: res.Finalised}, b); err != nil {
		return jobs.Outcome{}, err
	}
	return jobs.Outcome{Status: jobs.StatusCompleted}, nil
}

// Finished frees nothing: a close holds no files.
func (h *CloseJob) Finished(jobs.Job) {}
