package imports

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// env is the real Redis, ClickHouse and Kafka-protocol broker (kfake) the
// integration tests share; each test has its own database and tenants.
var env struct {
	redis   *devstack.Redis
	ch      *devstack.ClickHouse
	kafka   *devstack.Kafka
	rdb     *redis.Client
	brokers []string
}

const partitions = 3

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "imports", devstack.Want{ClickHouse: true, Redis: true, Kafka: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	env.redis, env.ch, env.kafka = srv.Redis, srv.ClickHouse, srv.Kafka
	env.brokers = env.kafka.Addrs
	if err := stream.CreateTopics(ctx, env.brokers, []stream.TopicSpec{{Name: schemas.TopicRaw, Partitions: partitions, RetentionMS: -1}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.rdb = redis.NewClient(&redis.Options{Addr: env.redis.Addr})
	defer env.rdb.Close()
	return m.Run()
}

var dbSeq atomic.Int64
var unsafeIdent = regexp.MustCompile(`[^a-z0-9_]+`)

func newDB(t *testing.T) driver.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server, clickhouse-server and a Kafka broker; skipped in -short mode")
	}
	name := fmt.Sprintf("imp_%s_%d", unsafeIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), dbSeq.Add(1))
	cfg := chdb.Config{Addr: env.ch.Addr, Database: name, User: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := chdb.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
		conn.Close()
	})
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
