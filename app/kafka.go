package app

import (
	"context"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// initKafka builds the process's one stream.Conn (the brokers with the TLS
// and SASL settings; every writer, consumer and client below uses it) and
// registers the readiness check "kafka": the brokers answer; it sets the
// encoding the stages write (--kafka-wire-json). Roles make their own
// writers and consumers (writer, consumer).
func (a *App) initKafka(context.Context) error {
	schemas.SetWireJSON(a.cfg.Kafka.WireJSON)
	conn, err := a.cfg.Kafka.Conn()
	if err != nil {
		return err
	}
	a.kafka = conn
	a.group.Check("kafka", conn.Ping)
	return nil
}

// writer returns a Kafka writer to topic ("": each message names its
// topic), closed after every component returned.
func (a *App) writer(topic string) *kafka.Writer {
	w := a.kafka.Writer(topic)
	a.onClose(func() { w.Close() })
	return w
}

// consumer returns the consumer configuration of a stage and registers its
// readiness check, "<stage>_kafka": it fails while the stage cannot fetch
// from Kafka. The consumer rides such an outage out (retrying with a
// backoff, kakin_stage_kafka_up 0) rather than failing the process.
func (a *App) consumer(stage, group string, topics []string) stream.ConsumerConfig {
	health := &stream.Health{}
	a.group.Check(stage+"_kafka", health.Ready)
	k := a.cfg.Kafka
	return stream.ConsumerConfig{Stage: stage, Brokers: a.kafka.Brokers, Dialer: a.kafka.Dialer,
		Transport: a.kafka.Transport, Group: group, Topics: topics,
		MaxBatch: k.BatchSize, MaxWait: k.FlushInterval, SessionTimeout: k.SessionTimeout,
		Log: a.log, Metrics: a.metrics, Health: health}
}
