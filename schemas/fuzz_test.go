package schemas

import (
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
)

// fuzzHeaders builds up to four headers from fuzzed keys and values; a
// key given as 0-4 picks one of the headers under test, so that they
// appear often.
func fuzzHeaders(keys []uint8, names []string, values [][]byte) []kafka.Header {
	var hs []kafka.Header
	for i, k := range keys {
		name := names[i]
		if int(k) < len(fuzzHeaderNames) {
			name = fuzzHeaderNames[k]
		}
		hs = append(hs, kafka.Header{Key: name, Value: values[i]})
	}
	return hs
}

var fuzzHeaderNames = []string{HeaderTenant, HeaderEventID, HeaderPayloadHash, HeaderRawPartition, HeaderRawOffset}

// FuzzRawHeaders decodes arbitrary usage.raw and usage.accepted headers.
// ParseRawHeaders accepts only a tenant, an id and a 16-hex-digit payload
// hash, and gives back what RawHeaders wrote for them; ParseRawPosition
// gives a position RawPositionHeaders writes back to the same position, or
// an error, or found=false only when neither header is present.
func FuzzRawHeaders(f *testing.F) {
	f.Add(uint8(0), "", []byte("acme"), uint8(1), "", []byte("e1"), uint8(2), "", []byte("00112233445566ff"), uint8(9), "x", []byte(""))
	f.Add(uint8(0), "", []byte("acme"), uint8(1), "", []byte(""), uint8(2), "", []byte("0011223344556"), uint8(2), "", []byte("ABCDEF0123456789"))
	f.Add(uint8(3), "", []byte("65535"), uint8(4), "", []byte("9223372036854775807"), uint8(3), "", []byte("65536"), uint8(9), "kakin-kind", []byte("correction"))
	f.Add(uint8(3), "", []byte("+1"), uint8(4), "", []byte("-1"), uint8(9), "", []byte(""), uint8(9), "", []byte(""))
	f.Fuzz(func(t *testing.T, k1 uint8, n1 string, v1 []byte, k2 uint8, n2 string, v2 []byte, k3 uint8, n3 string, v3 []byte, k4 uint8, n4 string, v4 []byte) {
		hs := fuzzHeaders([]uint8{k1, k2, k3, k4}, []string{n1, n2, n3, n4}, [][]byte{v1, v2, v3, v4})

		if tenant, id, hash, ok := ParseRawHeaders(hs); ok {
			if tenant == "" || id == "" {
				t.Fatalf("%v: accepted without tenant or id", hs)
			}
			seen := false
			for _, h := range hs {
				if h.Key == HeaderPayloadHash {
					seen = true
					if n, err := strconv.ParseUint(string(h.Value), 16, 64); err != nil || n != hash || len(h.Value) != 16 {
						t.Fatalf("%v: payload hash %x from %q", hs, hash, h.Value)
					}
				}
			}
			if !seen {
				t.Fatalf("%v: accepted without a payload hash", hs)
			}
			var sum [8]byte
			for i := range sum {
				sum[i] = byte(hash >> (56 - 8*i))
			}
			again := []kafka.Header{{Key: HeaderTenant, Value: []byte(tenant)}, {Key: HeaderEventID, Value: []byte(id)},
				{Key: HeaderPayloadHash, Value: hex.AppendEncode(nil, sum[:])}}
			if t2, id2, h2, ok := ParseRawHeaders(again); !ok || t2 != tenant || id2 != id || h2 != hash {
				t.Fatalf("%v: re-encoded headers read as %q %q %x %v", hs, t2, id2, h2, ok)
			}
		}

		p, o, found, err := ParseRawPosition(hs)
		present := false
		for _, h := range hs {
			present = present || h.Key == HeaderRawPartition || h.Key == HeaderRawOffset
		}
		switch {
		case found != present:
			t.Fatalf("%v: found %v, headers present %v", hs, found, present)
		case found && err == nil:
			if p < 0 || p > 0xffff || o < 0 {
				t.Fatalf("%v: position %d/%d out of range", hs, p, o)
			}
			p2, o2, found2, err2 := ParseRawPosition(RawPositionHeaders(nil, p, o))
			if !found2 || err2 != nil || p2 != p || o2 != o {
				t.Fatalf("%v: position %d/%d re-encoded reads %d/%d %v %v", hs, p, o, p2, o2, found2, err2)
			}
		}
	})
}
