// Package jobs runs long work asynchronously and durably: a job is created
// with a kind and parameters, answered with an id at once, and done later by
// a worker of any process that can handle its kind.
//
// State lives in ClickHouse (tables jobs, job_errors, job_cancels; migration
// 0004): every change of a job appends a row with a higher version and the
// newest row is the job (ReplacingMergeTree read with FINAL). A job is run by
// one worker at a time, the holder of its lease in Redis, renewed by a
// heartbeat. A worker that stops (crash, SIGKILL, lost Redis) stops renewing;
// once the lease has expired another process's scan takes the job over and
// resumes it from the last checkpoint the kind's Handler saved. A job whose
// runs keep dying is failed with the reason after MaxAttempts, so no job stays
// "processing" for ever. Rows written by a worker that lost its lease carry a
// lower epoch in their version and never replace the new holder's.
package jobs

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"strings"
	"time"
)

// Status is where a job is in its life.
type Status string

// The statuses of a job: pending (created, not started), processing,
// and the final ones: completed, failed, cancelled.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every status, in life order.
var Statuses = []Status{StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled}

// Final reports whether s is an end state.
func (s Status) Final() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Valid reports whether s names a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Counts are a job's progress. Their meaning per kind: for a usage import,
// Total is the number of records in the file (counted while it was received,
// exact once the job finished), Processed the records read so far, Accepted
// those published, Rejected those reported in the error report.
type Counts struct {
	Total     uint64
	Processed uint64
	Accepted  uint64
	Rejected  uint64
}

// Job is the state of one job: its newest row.
type Job struct {
	Tenant string
	ID     string
	Kind   string
	Status Status
	// Params are the job's parameters as the API shows them (a JSON object).
	Params json.RawMessage
	// Checkpoint is the kind handler's private resume state (a JSON value),
	// saved with the counts; never shown by the API.
	Checkpoint json.RawMessage
	Counts
	// Error is why the job failed, or, while it runs, the last error a run
	// stopped on.
	Error      string
	CreatedBy  string // client id of the creator
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time // zero until final
	// Worker is the lease owner while a run holds it, "" after a clean
	// handover or the end.
	Worker string
	// Attempts counts runs that ended without a clean handover (a crash, a
	// lost lease, an error).
	Attempts uint32
	// Epoch is the number of times the job's lease was taken; the high half
	// of Version.
	Epoch   uint32
	Version uint64
}

// nextVersion returns the version of the job's next row written in epoch.
func (j *Job) nextVersion(epoch uint32) uint64 {
	if uint32(j.Version>>32) == epoch {
		return j.Version + 1
	}
	return uint64(epoch)<<32 | 1
}

// LineError is one problem of one line of a job's input: a row of the
// downloadable error report.
type LineError struct {
	Line     uint64 `json:"line"`
	RecordID string `json:"record_id"`
	Field    string `json:"field"`
	Reason   string `json:"reason"`
}

// NewID returns an unguessable job id: "job_" and 26 base32 characters
// (128 random bits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "job_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// ValidID reports whether s has the shape of a job id (so that it can be used
// in a file name or a key).
func ValidID(s string) bool {
	if !strings.HasPrefix(s, "job_") || len(s) != 4+26 {
		return false
	}
	for _, r := range s[4:] {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}
