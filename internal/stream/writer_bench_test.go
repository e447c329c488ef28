package stream

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BenchmarkWriterBatchSize writes what a stage writes per consumer batch:
// 1,200 messages of ~200 bytes keyed over a 12-partition topic in one
// synchronous call (cpu-ns/msg: the writer's and the in-process broker's CPU,
// GC included). kafka-go preallocates BatchSize messages for every
// partition's batch of a call (writeBatch.add), whatever it holds.
func BenchmarkWriterBatchSize(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	brokers := c.ListenAddrs()
	if err := CreateTopics(ctx, brokers, []TopicSpec{{Name: "bench", Partitions: 12, RetentionMS: -1}}); err != nil {
		b.Fatal(err)
	}
	msgs := make([]kafka.Message, 1200)
	val := make([]byte, 200)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "customer-%d", i%1000), Value: val}
	}
	for _, size := range []int{1000, 256} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			w := Plain(brokers).Writer("bench")
			w.BatchSize = size
			defer w.Close()
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*len(msgs)), "cpu-ns/msg")
		})
	}
}

// processCPU is the CPU time (user + system) the process used so far: the
// writer and the in-process broker.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
