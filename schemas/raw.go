package schemas

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

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

// The usage.raw position of a record on usage.accepted. Dedupe sets them on
// every record it passes on (RawPositionHeaders): the position ingest gave the
// record once, which every copy of it shares however often dedupe handles its
// batch again. The rater's running state recognises a record by it
// (rater/runstate). Corrections and re-rate requests have none.
const (
	HeaderRawPartition = "kakin-raw-partition" // decimal, 0–65535
	HeaderRawOffset    = "kakin-raw-offset"    // decimal, ≥ 0
)

// RawPositionHeaders appends the headers naming the usage.raw position
// (partition, offset) to hs.
func RawPositionHeaders(hs []kafka.Header, partition int, offset int64) []kafka.Header {
	return append(hs,
		kafka.Header{Key: HeaderRawPartition, Value: strconv.AppendInt(nil, int64(partition), 10)},
		kafka.Header{Key: HeaderRawOffset, Value: strconv.AppendInt(nil, offset, 10)})
}

// ParseRawPosition returns the usage.raw position RawPositionHeaders
// recorded. found is false when neither header is present (a record passed
// on before dedupe set them); err is set when only one is present or either
// is not a valid position.
func ParseRawPosition(hs []kafka.Header) (partition int, offset int64, found bool, err error) {
	var seen int
	for _, h := range hs {
		switch h.Key {
		case HeaderRawPartition:
			p, perr := strconv.ParseUint(string(h.Value), 10, 16)
			if perr != nil {
				return 0, 0, true, fmt.Errorf("header %s: %w", HeaderRawPartition, perr)
			}
			partition, seen = int(p), seen|1
		case HeaderRawOffset:
			o, perr := strconv.ParseUint(string(h.Value), 10, 63)
			if perr != nil {
				return 0, 0, true, fmt.Errorf("header %s: %w", HeaderRawOffset, perr)
			}
			offset, seen = int64(o), seen|2
		}
	}
	switch seen {
	case 0:
		return 0, 0, false, nil
	case 3:
		return partition, offset, true, nil
	default:
		return 0, 0, true, fmt.Errorf("headers %s and %s: only one of them is set", HeaderRawPartition, HeaderRawOffset)
	}
}
