package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// A process whose broker is unreachable keeps running (it used to exit 1
// when a consumer's fetch failed, and crash-loop while the broker was
// down): its dedupe and aggregator consumers wait and retry, /readyz
// answers 503 naming each stage's "<stage>_kafka" check, the stages'
// kakin_stage_kafka_up gauges are 0, no component failure is counted, and
// a stop still ends it promptly and without an error.
func TestBrokerOutageKeepsTheServerRunning(t *testing.T) {
	port, err := devstack.FreePort() // nothing listens on it
	if err != nil {
		t.Fatal(err)
	}
	s := newApp(Config{HTTP: HTTPConfig{Addr: "127.0.0.1:0"}, Kafka: KafkaConfig{Brokers: fmt.Sprintf("127.0.0.1:%d", port),
		BatchSize: 10, FlushInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}}, slog.New(slog.DiscardHandler))
	if s.kafka, err = s.cfg.Kafka.Conn(); err != nil { // what initKafka does, without its "kafka" check
		t.Fatal(err)
	}
	stages := []string{"dedupe", "aggregator"}
	for _, stage := range stages {
		cc := s.consumer(stage, "kakin-"+stage, []string{"usage.raw"})
		s.group.Go(stage, func(ctx context.Context) error {
			return stream.Consume(ctx, cc, func(context.Context, []kafka.Message) error { return nil })
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	readyz := func() (int, map[string]string) {
		rec := httptest.NewRecorder()
		s.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("readyz body: %v: %s", err, rec.Body)
		}
		return rec.Code, body
	}
	// A bound for a loaded 2-core box; kafka-go reports a refused
	// connection after a few quick attempts.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("the server stopped while the broker was unreachable: %v", err)
		default:
		}
		code, body := readyz()
		blocked := code == http.StatusServiceUnavailable
		for _, stage := range stages {
			blocked = blocked && body[stage+"_kafka"] != "" && body[stage+"_kafka"] != "ok" &&
				testutil.ToFloat64(s.metrics.KafkaUp.WithLabelValues(stage)) == 0
		}
		if blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never reported the stages blocked: %d %v", code, body)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	for _, stage := range stages {
		if n := testutil.ToFloat64(s.group.failures.WithLabelValues(stage)); n != 0 {
			t.Errorf("kakin_component_failures_total{component=%q} = %v, want 0", stage, n)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after a stop, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not stop within 15s during the outage")
	}
}
