package schemas

import (
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Correction actions: invalidate (無効化) stops a usage record from counting;
// cancel (取り消し) undoes an invalidation, and the record counts again.
const (
	ActionInvalidate = "invalidate"
	ActionCancel     = "cancel"
)

// Record statuses as a generation says them.
const (
	StatusValid   = "valid"
	StatusInvalid = "invalid"
)

// KindHeader is the Kafka header that marks a message on usage.accepted that
// is not a usage record. Ingest and dedupe never set headers, so a client can
// never make one of its records look like a correction.
const KindHeader = "kakin-kind"

// KindCorrection is KindHeader's value on a correction message.
const KindCorrection = "correction"

// Correction is a change of a usage record's status, published by the admin
// API to usage.accepted with the record's partition key, so that it reaches
// the rater in order with the customer's usage. It carries the original event
// as stored, so the rater can price it again with the same rules.
//
// Generation is the record's status version after the change. A record
// starts valid at generation 0 and every change adds one, so an odd
// generation is always an invalidation and an even one a cancellation; two
// admins who invalidate the same record at once both publish the same
// generation and so the same line ids.
type Correction struct {
	Action      string     `json:"action"`
	Generation  uint64     `json:"generation"`
	Event       UsageEvent `json:"event"`
	Reason      string     `json:"reason,omitempty"`
	Actor       string     `json:"actor"`
	RequestedAt time.Time  `json:"requested_at"`
}

// Validate reports whether c is a correction the rater can apply.
func (c *Correction) Validate() error {
	switch {
	case c.Event.Tenant == "" || c.Event.ID == "" || c.Event.Customer == "":
		return fmt.Errorf("correction lacks the record's tenant, id or customer")
	case c.Generation == 0:
		return fmt.Errorf("correction of %s has generation 0", c.Event.ID)
	case c.Action != ActionForGeneration(c.Generation):
		return fmt.Errorf("correction of %s: action %q does not match generation %d", c.Event.ID, c.Action, c.Generation)
	}
	return nil
}

// ActionForGeneration is the action that produces generation g (> 0).
func ActionForGeneration(g uint64) string {
	if g%2 == 1 {
		return ActionInvalidate
	}
	return ActionCancel
}

// StatusForGeneration is a record's status at generation g.
func StatusForGeneration(g uint64) string {
	if g%2 == 1 {
		return StatusInvalid
	}
	return StatusValid
}

// IsCorrection reports whether a usage.accepted message is a correction.
func IsCorrection(m *kafka.Message) bool {
	for _, h := range m.Headers {
		if h.Key == KindHeader {
			return string(h.Value) == KindCorrection
		}
	}
	return false
}

// CorrectionHeaders are the headers of a correction message.
func CorrectionHeaders() []kafka.Header {
	return []kafka.Header{{Key: KindHeader, Value: []byte(KindCorrection)}}
}

// StatusChange is the outcome of one correction, written by the rater to
// usage.status once it has emitted the correction's lines (if any) to
// usage.rated. The aggregator stores it in usage_status.
type StatusChange struct {
	Event       UsageEvent `json:"event"`
	Generation  uint64     `json:"generation"`
	Action      string     `json:"action"`
	Status      string     `json:"status"` // StatusValid or StatusInvalid
	Reason      string     `json:"reason,omitempty"`
	Actor       string     `json:"actor"`
	RequestedAt time.Time  `json:"requested_at"`
	AppliedAt   time.Time  `json:"applied_at"`
	// Priced tells whether the rater could price the record and emitted
	// correction lines; false for a record that never had a line (unrated).
	Priced bool     `json:"priced"`
	Lines  []string `json:"lines,omitempty"` // ids of the correction lines
}
