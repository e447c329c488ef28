package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/segmentio/kafka-go"
)

// A commit that fails after its batch was handled is retried: the reader
// does not hand the batch again, so without a retry a quiet partition's
// committed offset would stay behind for ever (lag that never drains, seen
// in the fault harness after a broker outage). Here the first commits fail
// and no record follows the last batch; the group still reaches the end
// offsets, and every record is handed once.
func TestConsumeRetriesAFailedCommit(t *testing.T) {
	needKafka(t)
	topic := newTopic(t, 2)
	restore := stream.FailCommitsOf(topic, 3)
	defer restore()
	end := produce(t, topic, 40)
	group := uniqueName(t, "group")

	var mu sync.Mutex
	seen := map[pos]int{}
	c := startConsumer(t, consumerConfig(group, 100, topic), func(context.CancelFunc) stream.BatchHandler {
		return func(ctx context.Context, msgs []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				seen[pos{m.Partition, m.Offset}]++
			}
			return nil
		}
	})
	waitFor(t, 30*time.Second, "the committed offsets to reach the end", func() (bool, string) {
		got, err := fetchCommitted(context.Background(), group, topic, 2)
		return err == nil && maps(got, end), fmt.Sprintf("committed %v, end %v, err %v", got, end, err)
	})
	if err := c.stop(t); err != nil {
		t.Fatalf("Consume returned %v after cancel, want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	checkEachOnce(t, seen, end)
}
