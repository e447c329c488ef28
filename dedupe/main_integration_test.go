package dedupe

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// env is the infrastructure every test of this package shares: a real
// redis-server, a real Redis Cluster of two masters, and an in-memory kfake
// broker with the pipeline's topics.
// Tests use tenants of their own, so they never see each other's claims,
// and read back only what their own calls produced. They do not run in
// parallel: one of them kills Redis.
var env struct {
	redis   *devstack.Redis
	kafka   *devstack.Kafka
	rdb     *redis.Client
	cluster *devstack.RedisCluster
	crdb    *redis.ClusterClient
	brokers []string
}

// clusterMasters is the size of the test cluster: one master per core here.
const clusterMasters = 2

const partitions = 3

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Redis: true, Kafka: true}, func(ctx context.Context) (err error) {
		env.redis, env.kafka = testenv.RedisServer(), testenv.Kafka()
		env.brokers = env.kafka.Addrs
		if err := createTopics(ctx, schemas.Topics...); err != nil {
			return err
		}
		redis.SetLogger(quietLogger{}) // the Redis-down test makes it log every failed dial
		env.rdb = redis.NewClient(&redis.Options{Addr: env.redis.Addr})
		testenv.AtExit(func() { env.rdb.Close() })
		if env.cluster, err = devstack.StartRedisCluster(ctx, filepath.Join(testenv.Dir(), "cluster"), clusterMasters); err != nil {
			return err
		}
		testenv.AtExit(func() { env.cluster.Stop() })
		env.crdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: env.cluster.Addrs()})
		testenv.AtExit(func() { env.crdb.Close() })
		return nil
	})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// needServers skips the test in -short mode: it needs Redis and Kafka.
func needServers(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server and a Kafka broker; skipped in -short mode")
	}
}

// newTenant returns a tenant id no other test (or earlier run on the same
// Redis) has used.
func newTenant(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func kclient() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(env.brokers...), Timeout: 5 * time.Second}
}

// offsets are the end offsets of topics, by topic and partition.
type offsets map[string]map[int]int64

// outputTopics are the topics a dedupe stage may write to (and one it must not).
var outputTopics = []string{schemas.TopicAccepted, schemas.TopicDuplicates, schemas.TopicUnrated, schemas.TopicRated}

// endOffsets returns the end offset of every partition of the output topics.
func endOffsets(t *testing.T) offsets { return endOffsetsOf(t, outputTopics...) }

// endOffsetsOf returns the end offset of every partition of topics.
func endOffsetsOf(t *testing.T, topics ...string) offsets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, topic := range topics {
		for p := range partitions {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	resp, err := kclient().ListOffsets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := offsets{}
	for topic, ps := range resp.Topics {
		out[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("list offsets %s/%d: %v", topic, p.Partition, p.Error)
			}
			out[topic][p.Partition] = p.LastOffset
		}
	}
	for _, topic := range topics {
		if len(out[topic]) != partitions {
			t.Fatalf("list offsets %s: %v", topic, out[topic])
		}
	}
	return out
}

// readSince returns, by topic, every record written to the output topics
// after the end offsets since, partition by partition in offset order.
func readSince(t *testing.T, since offsets) map[string][]kafka.Message {
	t.Helper()
	return readTopicsSince(t, since, outputTopics...)
}

// readTopicsSince is readSince for any topics (a topic missing from since
// is read from its start).
func readTopicsSince(t *testing.T, since offsets, topics ...string) map[string][]kafka.Message {
	t.Helper()
	now := endOffsetsOf(t, topics...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string][]kafka.Message{}
	for topic, ps := range now {
		for p := range partitions {
			for off := since[topic][p]; off < ps[p]; {
				if ctx.Err() != nil {
					t.Fatalf("read %s/%d: stuck at offset %d of %d", topic, p, off, ps[p])
				}
				resp, err := kclient().Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: off,
					MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
				if err != nil {
					t.Fatalf("fetch %s/%d@%d: %v", topic, p, off, err)
				}
				if resp.Error != nil {
					t.Fatalf("fetch %s/%d@%d: %v", topic, p, off, resp.Error)
				}
				for {
					r, err := resp.Records.ReadRecord()
					if err != nil {
						break // io.EOF or the end of a truncated batch
					}
					if r.Offset < off || r.Offset >= ps[p] {
						continue
					}
					m := kafka.Message{Topic: topic, Partition: p, Offset: r.Offset, Time: r.Time, Headers: r.Headers}
					if r.Key != nil {
						m.Key, _ = io.ReadAll(r.Key)
					}
					if r.Value != nil {
						m.Value, _ = io.ReadAll(r.Value)
					}
					out[topic] = append(out[topic], m)
					off = r.Offset + 1
				}
			}
		}
	}
	return out
}

// createTopics creates the package's topics on its broker, partitions each.
func createTopics(ctx context.Context, topics ...string) error {
	specs := make([]stream.TopicSpec, len(topics))
	for i, name := range topics {
		specs[i] = stream.TopicSpec{Name: name, Partitions: partitions, RetentionMS: -1}
	}
	return stream.CreateTopics(ctx, testenv.Brokers(), specs)
}
