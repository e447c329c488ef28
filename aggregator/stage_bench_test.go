package aggregator

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// BenchmarkHandleBatch measures the aggregator's cost per usage record, with
// and without the record store: "rated only" is one rated line per record
// (before usage_records existed), "rated+record" adds the record's
// usage.accepted message, as the aggregator now consumes both. Batches of
// 5,000 (the default --batch-size).
//
//	go test -run '^$' -bench HandleBatch -benchtime 20x ./aggregator/
func BenchmarkHandleBatch(b *testing.B) {
	for _, withRecords := range []bool{false, true} {
		name := "rated_only"
		if withRecords {
			name = "rated+record"
		}
		b.Run(name, func(b *testing.B) {
			conn := newDB(b)
			stage := newStage(conn)
			ctx := context.Background()
			const size = 5000
			seq := 0
			batch := func() []kafka.Message {
				msgs := make([]kafka.Message, 0, 2*size)
				for i := 0; i < size; i++ {
					seq++
					id := "e" + strconv.Itoa(seq)
					ev := record("acme", id, "c"+strconv.Itoa(seq%1000), "api_calls", "", seq%60)
					l := line("acme", ev.Customer, "2026-03", id, "api_calls", "1.5", "3", "JPY")
					l.Event = ev
					msgs = append(msgs, ratedMsg(b, 0, int64(seq), l))
					if withRecords {
						msgs = append(msgs, acceptedMsg(b, 0, int64(seq), ev))
					}
				}
				return msgs
			}
			batches := make([][]kafka.Message, b.N)
			for i := range batches {
				batches[i] = batch()
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := stage.HandleBatch(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "records/s")
		})
	}
}
