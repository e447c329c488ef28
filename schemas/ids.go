package schemas

import (
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/zeebo/xxh3"
)

// LineID derives the id of the charge line that prices item for an event. The
// same event and item always give the same id, so a redelivered line replaces
// itself in ClickHouse instead of adding to the total.
func LineID(tenant, eventID, item string) string {
	h := xxh3.New()
	writeField(h, tenant)
	writeField(h, eventID)
	writeField(h, item)
	sum := h.Sum128().Bytes()
	return hex.EncodeToString(sum[:])
}

// CorrectionLineID derives the id of the line that corrects item of an event
// for one status change (action and generation). A redelivered or re-published
// correction of the same generation gets the same id, so it replaces itself
// instead of counting twice; the prefix keeps it apart from every LineID.
func CorrectionLineID(tenant, eventID, item, action string, generation uint64) string {
	h := xxh3.New()
	writeField(h, "correction")
	writeField(h, tenant)
	writeField(h, eventID)
	writeField(h, item)
	writeField(h, action)
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], generation)
	h.Write(g[:])
	sum := h.Sum128().Bytes()
	return hex.EncodeToString(sum[:])
}

// PayloadHash fingerprints the fields of an event that describe the usage, so
// a duplicate can say whether it repeats the first record or contradicts it.
// Ingest metadata (ReceivedAt) is not part of it.
func PayloadHash(e *UsageEvent) uint64 {
	h := xxh3.New()
	writeField(h, e.Customer)
	writeField(h, e.Element)
	writeField(h, e.Quantity.String())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(e.Time.UnixNano()))
	h.Write(ts[:])
	writeField(h, e.Contract)
	keys := make([]string, 0, len(e.Attributes))
	for k := range e.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		writeField(h, k)
		writeField(h, e.Attributes[k])
	}
	return h.Sum64()
}

// writeField writes a length-prefixed string so that field boundaries are
// unambiguous ("ab","c" and "a","bc" hash differently).
func writeField(h *xxh3.Hasher, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	h.Write(n[:])
	h.WriteString(s)
}

// ValidTenant reports whether s is a well-formed tenant id: 1-64 characters of
// lower-case letters, digits and '-'. Tenant ids appear in Redis keys and
// Kafka keys, so they must never contain separators.
func ValidTenant(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) < 0
}

// ValidCode reports whether s is a well-formed code (element, service, plan,
// fee, table ids): 1-64 characters of ASCII letters, digits and "_-.:".
func ValidCode(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
