package runstate

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDecode reads arbitrary entry bytes (as Redis returns them). An entry
// is refused or one Save could have written: positions of -1 (none) or
// more, and encoding it at its version gives back the same entry (and, for
// a version-2 value, the same bytes).
func FuzzDecode(f *testing.F) {
	for _, e := range []Entry{
		{Partition: 3, Offset: 17, RawPartition: 2, RawOffset: 40, Version: 5, Data: []byte("state")},
		{Partition: 0, Offset: -1, RawPartition: 0, RawOffset: -1},
		{Partition: 0xffff, Offset: 1<<63 - 1, RawPartition: 0xffff, RawOffset: 1<<63 - 1, Version: 1<<64 - 2},
	} {
		f.Add(encode(&e, e.Version))
	}
	v1 := binary.BigEndian.AppendUint16(nil, 4)
	v1 = binary.BigEndian.AppendUint64(v1, 99)
	f.Add(append(v1, "old state"...))
	f.Add([]byte("\xff\xff\x82\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfb\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff")) // offset -5
	f.Add([]byte("\xff\xff\x80short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := decode(b)
		if !ok {
			return
		}
		if e.Offset < -1 || e.RawOffset < -1 || e.Partition < 0 || e.Partition > 0xffff || e.RawPartition < 0 || e.RawPartition > 0xffff {
			t.Fatalf("%x: decoded to positions %d/%d raw %d/%d", b, e.Partition, e.Offset, e.RawPartition, e.RawOffset)
		}
		enc := encode(&e, e.Version)
		if b[2] >= 0x80 && !bytes.Equal(enc, b) {
			t.Fatalf("%x: decoded %+v encodes to %x", b, e, enc)
		}
		again, ok := decode(enc)
		if !ok || again.Partition != e.Partition || again.Offset != e.Offset || again.RawPartition != e.RawPartition ||
			again.RawOffset != e.RawOffset || again.Version != e.Version || !bytes.Equal(again.Data, e.Data) {
			t.Fatalf("%x: %+v re-encodes to %x, which decodes to %+v %v", b, e, enc, again, ok)
		}
	})
}
