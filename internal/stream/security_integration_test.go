package stream_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/segmentio/kafka-go"
)

// secureBroker starts a broker of the test's own with SASL users of every
// mechanism (password "right-<mechanism>") and, with withTLS, a TLS
// listener; it returns its addresses and the client TLS configuration
// trusting its CA (nil without TLS).
func secureBroker(t *testing.T, withTLS bool) ([]string, *tls.Config) {
	t.Helper()
	opts := devstack.KafkaOptions{}
	for _, m := range stream.SASLMechanisms {
		opts.Users = append(opts.Users, devstack.KafkaUser{Mechanism: m, Name: "kakin", Password: "right-" + m})
	}
	var client *tls.Config
	if withTLS {
		server, caFile, err := devstack.KafkaTLS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.TLS = server
		if client, err = stream.TLSConfig(caFile, "", "", false); err != nil {
			t.Fatal(err)
		}
	}
	k, err := devstack.StartKafkaWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k.Addrs, client
}

// Every client of a Conn (migrate's topic creation, the readiness ping,
// writers, a consumer group with its commits and lag) works against a
// broker that requires SASL, over TLS or not, with each mechanism: records
// written are consumed and committed.
func TestSecureRoundTrip(t *testing.T) {
	needKafka(t)
	for _, tt := range []struct {
		mechanism string
		tls       bool
	}{
		{stream.SASLScramSHA256, false},
		{stream.SASLScramSHA512, true},
		{stream.SASLPlain, true},
	} {
		t.Run(fmt.Sprintf("%s tls=%v", tt.mechanism, tt.tls), func(t *testing.T) {
			addrs, tlsCfg := secureBroker(t, tt.tls)
			mech, err := stream.NewSASL(tt.mechanism, "kakin", "right-"+tt.mechanism)
			if err != nil {
				t.Fatal(err)
			}
			conn := stream.NewConn(addrs, tlsCfg, mech)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			topic := uniqueName(t, "topic")
			if err := conn.CreateTopics(ctx, []stream.TopicSpec{{Name: topic, Partitions: 3, RetentionMS: -1}}); err != nil {
				t.Fatalf("create topics: %v", err)
			}
			const n = 300
			w := conn.Writer(topic)
			w.Balancer = &kafka.RoundRobin{}
			defer w.Close()
			msgs := make([]kafka.Message, n)
			for i := range msgs {
				msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "record %d", i), Time: time.Now()}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}

			group := uniqueName(t, "group")
			var mu sync.Mutex
			seen := map[string]bool{}
			cctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- stream.Consume(cctx, stream.ConsumerConfig{Stage: "secure", Brokers: conn.Brokers,
					Dialer: conn.Dialer, Transport: conn.Transport, Group: group, Topics: []string{topic},
					MaxWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second},
					func(_ context.Context, batch []kafka.Message) error {
						mu.Lock()
						defer mu.Unlock()
						for _, m := range batch {
							seen[string(m.Value)] = true
						}
						return nil
					})
			}()
			defer func() { stop(); <-done }()
			client := conn.Client(5 * time.Second)
			waitFor(t, 45*time.Second, "every record consumed and committed", func() (bool, string) {
				mu.Lock()
				got := len(seen)
				mu.Unlock()
				lag, err := stream.GroupLag(ctx, client, group, []string{topic})
				return got == n && err == nil && lag == 0, fmt.Sprintf("consumed %d of %d, lag %d (%v)", got, n, lag, err)
			})
		})
	}
}

// A wrong password, a missing SASL configuration or plaintext against a
// TLS listener is refused, and the refusal says what failed.
func TestSecureRefusals(t *testing.T) {
	needKafka(t)
	addrs, tlsCfg := secureBroker(t, true)
	wrong, err := stream.NewSASL(stream.SASLScramSHA256, "kakin", "wrong")
	if err != nil {
		t.Fatal(err)
	}
	right, err := stream.NewSASL(stream.SASLScramSHA512, "kakin", "right-"+stream.SASLScramSHA512)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		conn stream.Conn
		want string // in the error
	}{
		{"wrong password", stream.NewConn(addrs, tlsCfg, wrong), "SASL Authentication"},
		{"no sasl", stream.NewConn(addrs, tlsCfg, nil), "metadata"},
		{"no tls", stream.NewConn(addrs, nil, right), "kafka unreachable"},
		{"untrusted certificate", stream.NewConn(addrs, &tls.Config{}, right), "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tt.conn.Ping(ctx)
			t.Logf("ping: %v", err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ping = %v, want an error containing %q", err, tt.want)
			}
			err = tt.conn.CreateTopics(ctx, []stream.TopicSpec{{Name: uniqueName(t, "topic"), Partitions: 1, RetentionMS: -1}})
			if err == nil {
				t.Error("create topics succeeded")
			}
			if tt.name == "wrong password" && !strings.Contains(err.Error(), "sasl authentication failed") {
				t.Errorf("create topics = %v, want it to say the SASL authentication failed", err)
			}
		})
	}
}
