package runstate

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkLoadSave is one batch's round trips to the running state: load
// 100 entries (one MGET), save them all (one write), with 40-byte states.
// Needs Redis (not with -short).
func BenchmarkLoadSave(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Redis")
	}
	ctx := context.Background()
	s := New(rdb, time.Hour)
	keys := make([]Key, 100)
	for i := range keys {
		keys[i] = Key{Tenant: "bench", State: "customer-" + strconv.Itoa(i) + "/fee/2026-05"}
	}
	data := make([]byte, 40)
	var offset int64
	b.ReportAllocs()
	for b.Loop() {
		entries, err := s.Load(ctx, keys)
		if err != nil {
			b.Fatal(err)
		}
		for i := range entries {
			offset++
			entries[i].Partition, entries[i].Offset, entries[i].Data = 1, offset, data
		}
		if err := s.Save(ctx, keys, entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(offset), "ns/entry")
}
