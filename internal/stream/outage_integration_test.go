package stream_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// outageBound is how long the tests below wait for a consumer to notice an
// outage or a recovery: kafka-go reports a lost broker after a few
// reconnection attempts and rejoins the group after its join backoff; the
// bound is wide for a loaded 2-core box.
const outageBound = 90 * time.Second

// broker is a private kfake broker with a data directory, so that it can be
// stopped and started again on the same address with its topics, records
// and committed group offsets.
type broker struct {
	t    *testing.T
	dir  string
	port int
	k    *devstack.Kafka
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, dir: t.TempDir()}
	b.start()
	_, port, err := net.SplitHostPort(b.k.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if b.port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	return b
}

func (b *broker) addrs() []string { return []string{fmt.Sprintf("127.0.0.1:%d", b.port)} }

func (b *broker) start() {
	b.t.Helper()
	k, err := devstack.StartKafka(b.dir, b.port, false)
	if err != nil {
		b.t.Fatalf("start the broker again on port %d: %v", b.port, err)
	}
	b.k = k
}

func (b *broker) stop() {
	if b.k != nil {
		b.k.Close()
		b.k = nil
	}
}

// produceTo writes n records to topic on addrs and returns every
// partition's end offset afterwards.
func produceTo(t *testing.T, addrs []string, topic string, n int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := stream.NewWriter(addrs, topic)
	w.Balancer = &kafka.RoundRobin{}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte(fmt.Sprintf("record %d", i)), Time: time.Now()}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d records to %s: %v", n, topic, err)
	}
	out := map[int]int64{}
	// A fresh transport: nothing cached from before a restart.
	c := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.LastOffset
	}
	return out
}

// committedOn is committed for a broker of the test's own.
func committedOn(addrs []string, group, topic string, partitions int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	c := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// A broker outage is not a failure of the consumer: it keeps running (its
// stage's process does not exit), reports not ready — its Health and the
// stage's kakin_stage_kafka_up / _blocked_since_seconds gauges, with the
// outage's start from the consumer's clock — and once the broker is back it
// consumes every record, those from before the outage and those produced
// after it, and commits them, and reports ready again. The consumer either
// runs when the broker stops, or starts while the broker is down.
func TestConsumeRidesOutABrokerOutage(t *testing.T) {
	needKafka(t)
	const parts = 2
	blockedAt := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC) // the consumer's clock: no dependence on today
	tests := []struct {
		name              string
		startDuringOutage bool
	}{
		{name: "broker stops under a running consumer"},
		{name: "consumer starts while the broker is down", startDuringOutage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBroker(t)
			topic, group := uniqueName(t, "topic"), uniqueName(t, "group")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := stream.CreateTopics(ctx, b.addrs(), []stream.TopicSpec{{Name: topic, Partitions: parts, RetentionMS: -1}}); err != nil {
				t.Fatal(err)
			}
			end := produceTo(t, b.addrs(), topic, 30)

			var mu sync.Mutex
			seen := map[pos]int{}
			cfg := consumerConfig(group, 10, topic)
			cfg.Brokers = b.addrs()
			cfg.Metrics = stream.NewMetrics(prometheus.NewRegistry())
			health := &stream.Health{}
			cfg.Health = health
			cfg.Now = func() time.Time { return blockedAt }
			allSeen := func(end map[int]int64) (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				for p, e := range end {
					for o := int64(0); o < e; o++ {
						if seen[pos{p, o}] == 0 {
							return false, fmt.Sprintf("record %d/%d not handed yet (%d distinct handed)", p, o, len(seen))
						}
					}
				}
				return true, ""
			}
			up := func() float64 { return testutil.ToFloat64(cfg.Metrics.KafkaUp.WithLabelValues("test")) }
			since := func() float64 { return testutil.ToFloat64(cfg.Metrics.KafkaBlockedSince.WithLabelValues("test")) }

			if tt.startDuringOutage {
				b.stop()
			}
			c := startConsumer(t, cfg, func(context.CancelFunc) stream.BatchHandler {
				return func(_ context.Context, msgs []kafka.Message) error {
					mu.Lock()
					defer mu.Unlock()
					for _, m := range msgs {
						seen[pos{m.Partition, m.Offset}]++
					}
					return nil
				}
			})
			running := func() {
				t.Helper()
				if c.returned() {
					t.Fatalf("Consume returned during the broker outage (its process would exit): %v", c.err)
				}
			}
			if !tt.startDuringOutage {
				waitFor(t, outageBound, "the records before the outage", func() (bool, string) { running(); return allSeen(end) })
				if err := health.Ready(ctx); err != nil || up() != 1 || since() != 0 {
					t.Fatalf("before the outage: ready %v, kafka_up %v, blocked_since %v; want nil, 1, 0", err, up(), since())
				}
				b.stop()
			}

			waitFor(t, outageBound, "the consumer to report the outage", func() (bool, string) {
				running()
				err := health.Ready(context.Background())
				return err != nil && up() == 0 && since() != 0,
					fmt.Sprintf("ready %v, kafka_up %v, blocked_since %v", err, up(), since())
			})
			if got := health.BlockedSince(); !got.Equal(blockedAt) || since() != float64(blockedAt.Unix()) {
				t.Errorf("blocked since %v (gauge %v), want the consumer clock's %v", got, since(), blockedAt)
			}
			running()

			b.start()
			more := produceTo(t, b.addrs(), topic, 30)
			waitFor(t, outageBound, "every record after the broker came back", func() (bool, string) {
				running()
				if ok, why := allSeen(more); !ok {
					return false, why
				}
				err := health.Ready(context.Background())
				return err == nil && up() == 1 && since() == 0,
					fmt.Sprintf("all handed; ready %v, kafka_up %v, blocked_since %v", err, up(), since())
			})
			waitFor(t, outageBound, "the group to commit every record", func() (bool, string) {
				got, err := committedOn(b.addrs(), group, topic, parts)
				return err == nil && maps(got, more), fmt.Sprintf("committed %v (err %v), want %v", got, err, more)
			})
			if err := c.stop(t); err != nil {
				t.Errorf("Consume returned %v, want nil", err)
			}
		})
	}
}

// A consumer whose broker is down stops promptly when its context ends,
// and without an error: the outage is not a failure.
func TestConsumeStopsPromptlyDuringAnOutage(t *testing.T) {
	needKafka(t)
	cfg := consumerConfig(uniqueName(t, "group"), 10, uniqueName(t, "topic"))
	cfg.Brokers = []string{deadAddr(t)}
	health := &stream.Health{}
	cfg.Health = health
	c := startConsumer(t, cfg, func(context.CancelFunc) stream.BatchHandler {
		return func(context.Context, []kafka.Message) error { return nil }
	})
	waitFor(t, outageBound, "the consumer to report the outage", func() (bool, string) {
		if c.returned() {
			t.Fatalf("Consume returned while nothing listens on its broker address: %v", c.err)
		}
		err := health.Ready(context.Background())
		return err != nil, fmt.Sprintf("ready %v", err)
	})
	start := time.Now()
	c.cancel()
	// Prompt: well inside the 30 s a shutdown is given, on a loaded box.
	const prompt = 10 * time.Second
	select {
	case <-c.done:
	case <-time.After(prompt):
		t.Fatalf("Consume did not return within %v of its context ending", prompt)
	}
	if c.err != nil {
		t.Errorf("Consume returned %v, want nil", c.err)
	}
	t.Logf("stopped %v after its context ended", time.Since(start).Round(time.Millisecond))
}
