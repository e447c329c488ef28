package aggregator

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// BenchmarkHandleBatch measures the aggregator's cost per usage record, with
// and without the record store: "rated_only" is one rated line per record
// (before usage_records existed), "rated+accepted" adds the record's
// usage.accepted message (as the aggregator consumed both before the rated
// line carried the record), "rated_carrying_record" is one rated line that
// carries the record (schemas.RecordOrigin), as now. Batches of 5,000 (the
// default --batch-size).
//
//	go test -run '^$' -bench HandleBatch -benchtime 20x ./aggregator/
func BenchmarkHandleBatch(b *testing.B) {
	for _, variant := range []string{"rated_only", "rated+accepted", "rated_carrying_record"} {
		b.Run(variant, func(b *testing.B) {
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
					if variant == "rated_carrying_record" {
						l.Record = &schemas.RecordOrigin{Partition: 0, Offset: int64(seq)}
					}
					msgs = append(msgs, ratedMsg(b, 0, int64(seq), l))
					if variant == "rated+accepted" {
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
