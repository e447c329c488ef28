package schemas

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/segmentio/kafka-go"
)

// The headers of a usage.raw record. They carry what the dedupe stage needs
// to claim the record's id, so that it decodes the event only when the
// record turns out to be a duplicate. Ingest sets them on every record
// (RawHeaders); the record's Kafka time is its receive time. A record
// without them is decoded instead.
const (
	HeaderTenant      = "kakin-tenant"
	HeaderEventID     = "kakin-event-id"
	HeaderPayloadHash = "kakin-payload-hash" // PayloadHash, 16 hex digits
)

// RawHeaders are the usage.raw headers of e.
func RawHeaders(e *UsageEvent) []kafka.Header {
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], PayloadHash(e))
	return []kafka.Header{
		{Key: HeaderTenant, Value: []byte(e.Tenant)},
		{Key: HeaderEventID, Value: []byte(e.ID)},
		{Key: HeaderPayloadHash, Value: hex.AppendEncode(nil, sum[:])},
	}
}

// ParseRawHeaders returns what RawHeaders recorded. ok is false unless all
// three headers are present and well formed.
func ParseRawHeaders(hs []kafka.Header) (tenant, id string, payloadHash uint64, ok bool) {
	var seen int
	for _, h := range hs {
		switch h.Key {
		case HeaderTenant:
			tenant, seen = string(h.Value), seen|1
		case HeaderEventID:
			id, seen = string(h.Value), seen|2
		case HeaderPayloadHash:
			var sum [8]byte
			if len(h.Value) != 16 {
				return "", "", 0, false
			}
			if _, err := hex.Decode(sum[:], h.Value); err != nil {
				return "", "", 0, false
			}
			payloadHash, seen = binary.BigEndian.Uint64(sum[:]), seen|4
		}
	}
	if seen != 7 || tenant == "" || id == "" {
		return "", "", 0, false
	}
	return tenant, id, payloadHash, true
}
