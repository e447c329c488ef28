package schemas

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// KindRerate is KindHeader's value on a re-rate request.
const KindRerate = "rerate"

// Rerate asks the rater to price one customer's billing period again from
// its stored records, with the catalogue as it is now. It travels on
// usage.accepted keyed like the customer's records (Key), so it is applied in
// order with them: records before it are in the recomputation, records after
// it are priced on top of the recomputed running state.
type Rerate struct {
	Tenant      string    `json:"tenant"`
	Customer    string    `json:"customer"`
	Period      string    `json:"period"` // YYYY-MM
	Job         string    `json:"job,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// Key is the Kafka key of the request: the customer's partition key.
func (r *Rerate) Key() []byte { return []byte(r.Tenant + "/" + r.Customer) }

// RerateHeaders are the headers of a re-rate request.
func RerateHeaders() []kafka.Header {
	return []kafka.Header{{Key: KindHeader, Value: []byte(KindRerate)}}
}

// MessageKind is the KindHeader value of a usage.accepted message: "" for a
// usage record, KindCorrection or KindRerate for control messages.
func MessageKind(m *kafka.Message) string { return HeaderKind(m.Headers) }

// HeaderKind is the KindHeader value among a usage.accepted message's
// headers: "" for a usage record, KindCorrection or KindRerate for control
// messages.
func HeaderKind(hs []kafka.Header) string {
	for _, h := range hs {
		if h.Key == KindHeader {
			return string(h.Value)
		}
	}
	return ""
}
