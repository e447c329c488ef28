package stream_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/segmentio/kafka-go"
)

// brokers are the addresses of the one in-memory kfake broker every test of
// this package shares; each test uses its own topics and groups.
var brokers []string

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Kafka: true}, func(context.Context) error {
		brokers = testenv.Brokers()
		return nil
	})
}

// needKafka skips the test in -short mode: it needs the broker.
func needKafka(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a Kafka broker; skipped in -short mode")
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// uniqueName derives a topic or group name from the test's name.
func uniqueName(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s.%s.%d", prefix, unsafeName.ReplaceAllString(t.Name(), "_"), time.Now().UnixNano())
}

// newTopic creates a topic of its own for the test.
func newTopic(t *testing.T, partitions int) string {
	t.Helper()
	name := uniqueName(t, "topic")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.CreateTopics(ctx, brokers, []stream.TopicSpec{{Name: name, Partitions: partitions, RetentionMS: -1}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// produce writes n records to topic, spread round-robin over its partitions,
// and returns the end offset of every partition afterwards.
func produce(t *testing.T, topic string, n int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := stream.NewWriter(brokers, topic)
	w.Balancer = &kafka.RoundRobin{}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte(fmt.Sprintf("record %d", i)), Time: time.Now()}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d records to %s: %v", n, topic, err)
	}
	return endOffsets(t, topic)
}

func client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
}

// endOffsets returns the high watermark of every partition of topic.
func endOffsets(t *testing.T, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	meta, err := client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	resp, err := client().ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("list offsets %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	if len(out) != len(reqs) {
		t.Fatalf("list offsets %s: %d partitions answered, want %d", topic, len(out), len(reqs))
	}
	return out
}

// committed returns the group's committed offset of every partition of
// topic (-1 when nothing was committed), asking the broker.
func committed(t *testing.T, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := fetchCommitted(ctx, group, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fetchCommitted is committed for use outside the test goroutine.
func fetchCommitted(ctx context.Context, group, topic string, partitions int) (map[int]int64, error) {
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := client().OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offset fetch %s %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

func sumOffsets(m map[int]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func offsetsString(msgs []kafka.Message) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d/%d", m.Partition, m.Offset)
	}
	return b.String()
}
