package imports

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// env is the real Redis and Kafka-protocol broker (kfake) the integration
// tests share (testenv); each test has its own database and tenants.
var env struct {
	rdb     *redis.Client
	brokers []string
}

const partitions = 3

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true, Kafka: true}, func(ctx context.Context) error {
		env.brokers = testenv.Brokers()
		env.rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		testenv.AtExit(func() { env.rdb.Close() })
		return createTopics(ctx, schemas.TopicRaw)
	})
}

// newDB migrates a database of the test's own, dropped when it ends.
func newDB(t *testing.T) driver.Conn {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "imp")
	return conn
}

func newTenant(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// rawMessages returns every usage.raw message keyed for tenant.
func rawMessages(t *testing.T, tenant string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(env.brokers...), Timeout: 10 * time.Second}
	var out []kafka.Message
	for p := range partitions {
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			schemas.TopicRaw: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := resp.Topics[schemas.TopicRaw][0].LastOffset
		for off := int64(0); off < end; {
			f, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: schemas.TopicRaw, Partition: p, Offset: off,
				MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("fetch usage.raw/%d@%d: %v", p, off, err)
			}
			if f.Error != nil {
				t.Fatalf("fetch usage.raw/%d@%d: %v", p, off, f.Error)
			}
			for {
				r, err := f.Records.ReadRecord()
				if err != nil {
					break
				}
				if r.Offset < off {
					continue
				}
				m := kafka.Message{Topic: schemas.TopicRaw, Partition: p, Offset: r.Offset, Time: r.Time, Headers: r.Headers}
				if r.Key != nil {
					m.Key, _ = io.ReadAll(r.Key)
				}
				if r.Value != nil {
					m.Value, _ = io.ReadAll(r.Value)
				}
				if strings.HasPrefix(string(m.Key), tenant+"/") {
					out = append(out, m)
				}
				off = r.Offset + 1
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
