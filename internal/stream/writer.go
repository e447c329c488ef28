package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// NewWriter returns a writer that produces synchronously with acks=all. Topic
// may be empty, in which case every message names its own topic. The batch
// settings follow the measurements in STACK.md: kafka-go's defaults (1 s batch
// timeout) would make every synchronous call take a second.
func NewWriter(brokers []string, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              1000,
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
}

// CreateTopics creates the topics that do not exist yet. Existing topics are
// left as they are, so it is safe to run on every start.
func CreateTopics(ctx context.Context, brokers []string, specs []TopicSpec) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             s.Name,
			NumPartitions:     s.Partitions,
			ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: fmt.Sprint(s.RetentionMS)},
				{ConfigName: "message.timestamp.type", ConfigValue: "CreateTime"},
			},
		})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// Ping checks that a broker answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 3 * time.Second}
	_, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) {
			return fmt.Errorf("kafka unreachable: %w", err)
		}
		return fmt.Errorf("kafka metadata: %w", err)
	}
	return nil
}
