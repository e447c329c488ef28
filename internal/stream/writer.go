package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// NewWriter returns a writer to brokers in plaintext (Conn.Writer of Plain).
func NewWriter(brokers []string, topic string) *kafka.Writer {
	return Plain(brokers).Writer(topic)
}

// Writer returns a writer over c's Transport that produces synchronously
// with acks=all. Topic may be empty, in which case every message names its
// own topic. The batch settings follow the measurements in STACK.md:
// kafka-go's defaults (1 s batch timeout) would make every synchronous call
// take a second. Closing the writer leaves c's Transport open for the
// process's other clients.
func (c Conn) Writer(topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(c.Brokers...),
		Transport:    c.transport(),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		// kafka-go preallocates BatchSize messages for each partition's
		// batch of every call (writer.go, writeBatch.add), ~170 bytes
		// each: a stage's call of ~1,200 messages over 12 partitions
		// holds ~100 per partition. 256 keeps a usual call at one batch
		// per partition and cut the writer and broker's CPU per message
		// by about a third against 1000 (BenchmarkWriterBatchSize).
		BatchSize:              256,
		BatchBytes:             16 << 20,
		BatchTimeout:           time.Millisecond,
		MaxAttempts:            3,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		WriteTimeout:           10 * time.Second,
		ReadTimeout:            10 * time.Second,
		AllowAutoTopicCreation: false,
	}
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name        string
	Partitions  int
	RetentionMS int64 // -1 keeps records forever
	// ReplicationFactor is the number of brokers holding each partition
	// (0 = 1, the embedded broker's). Production Kafka: 3.
	ReplicationFactor int
	// MinInsyncReplicas, when > 0, is the topic's min.insync.replicas: with
	// the writers' acks=all (RequireAll) a write is acknowledged only once
	// that many replicas have it, and refused (and retried) while fewer are
	// in sync. Production Kafka: 2 with a replication factor of 3.
	MinInsyncReplicas int
}

// CreateTopics creates the topics that do not exist yet on brokers in
// plaintext (Conn.CreateTopics of Plain).
func CreateTopics(ctx context.Context, brokers []string, specs []TopicSpec) error {
	return Plain(brokers).CreateTopics(ctx, specs)
}

// CreateTopics creates the topics that do not exist yet. Existing topics are
// left as they are, so it is safe to run on every start.
func (c Conn) CreateTopics(ctx context.Context, specs []TopicSpec) error {
	client := c.Client(10 * time.Second)
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{
			Topic:             s.Name,
			NumPartitions:     s.Partitions,
			ReplicationFactor: max(s.ReplicationFactor, 1),
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: fmt.Sprint(s.RetentionMS)},
				{ConfigName: "message.timestamp.type", ConfigValue: "CreateTime"},
			},
		}
		if s.MinInsyncReplicas > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "min.insync.replicas", ConfigValue: fmt.Sprint(s.MinInsyncReplicas)})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		// The transport reports a refused TLS handshake or SASL exchange
		// as a broker not available: a ping says what failed.
		if perr := c.Ping(ctx); perr != nil {
			return fmt.Errorf("create topics: %w", perr)
		}
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// PingTimeout bounds one Ping (all its brokers together) when the caller's
// context allows longer.
const PingTimeout = 2 * time.Second

// Ping checks that one of brokers answers in plaintext (Conn.Ping of
// Plain).
func Ping(ctx context.Context, brokers []string) error {
	return Plain(brokers).Ping(ctx)
}

// Ping checks that a broker answers now, over c's Dialer (TLS and SASL
// included): it dials each broker in turn over a fresh connection and sends
// a metadata request of no topics, until one answers, within PingTimeout (or ctx's earlier deadline). It never answers from a
// cache: kafka.Client's default transport answers metadata requests from
// its cache (up to 6 s old), which reported a stopped broker as fine.
func (c Conn) Ping(ctx context.Context) error {
	brokers := c.Brokers
	if len(brokers) == 0 {
		return errors.New("kafka unreachable: no brokers configured")
	}
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	errs := make([]error, 0, len(brokers))
	for _, addr := range brokers {
		err := pingBroker(ctx, c.dialer(), addr)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("kafka unreachable: %w", errors.Join(errs...))
}

// pingBroker sends one metadata request to addr over a new connection
// dialled by d (with its TLS handshake and SASL exchange).
func pingBroker(ctx context.Context, d *kafka.Dialer, addr string) error {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, describeAuth(err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	// The connection has no context: closing it ends a request in flight
	// when ctx ends before the deadline (a cancelled readiness probe).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// A metadata request of no topics: unlike ApiVersions, a broker that
	// requires SASL answers it only on an authenticated connection.
	if _, err := conn.Brokers(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: metadata: %w (%w)", addr, ctx.Err(), err)
		}
		return fmt.Errorf("%s: metadata: %w", addr, err)
	}
	return nil
}
