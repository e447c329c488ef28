package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/shopspring/decimal"
)

// secureBroker is a broker that accepts only TLS connections authenticated
// with SCRAM-SHA-512 as kakin/password, and the processes' settings for it:
// the test CA, the mechanism, the user and the password in a file.
func secureBroker(t *testing.T) brokerSetup {
	t.Helper()
	dir := t.TempDir()
	server, caFile, err := devstack.KafkaTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "kafka-password")
	if err := os.WriteFile(pwFile, []byte("right-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return brokerSetup{
		opts: devstack.KafkaOptions{TLS: server, Users: []devstack.KafkaUser{
			{Mechanism: stream.SASLScramSHA512, Name: "kakin", Password: "right-password"}}},
		conn: func(addrs []string) stream.Conn {
			tlsCfg, err := stream.TLSConfig(caFile, "", "", false)
			if err != nil {
				t.Fatal(err)
			}
			mech, err := stream.NewSASL(stream.SASLScramSHA512, "kakin", "right-password")
			if err != nil {
				t.Fatal(err)
			}
			return stream.NewConn(addrs, tlsCfg, mech)
		},
		environ: []string{"KAKIN_KAFKA_TLS_CA=" + caFile, "KAKIN_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
			"KAKIN_KAFKA_SASL_USERNAME=kakin", "KAKIN_KAFKA_SASL_PASSWORD_FILE=" + pwFile},
	}
}

// TestPipelineOverKafkaTLSAndSCRAM runs migrate and the four pipeline roles
// as separate processes against a broker that requires TLS and
// SCRAM-SHA-512: every record is charged once (a duplicate flagged), so
// every Kafka client of every role (writers, consumer groups, commits,
// readiness, topic creation) authenticated. A migrate with a wrong password
// fails saying so.
func TestPipelineOverKafkaTLSAndSCRAM(t *testing.T) {
	e := newEnvWith(t, e2ePrices, secureBroker(t))
	ingest := e.start("ingest", "ingest")
	for _, role := range []string{"dedupe", "rater", "aggregator"} {
		e.start(role, role)
	}
	ctx := context.Background()

	const n = 200
	var lines []string
	for i := range n { // 2 api_calls at 0.5 JPY: 1 JPY each
		lines = append(lines, fmt.Sprintf(`{"id":"s%d","customer":"c1","element":"api_calls","quantity":2,"time":"2026-11-10T00:00:00Z"}`, i))
	}
	lines = append(lines, lines[0]) // a duplicate
	if code, resp := post(t, ingest.url, "acme", []byte(strings.Join(lines, "\n"))); code != http.StatusAccepted || resp.Accepted != n+1 {
		t.Fatalf("ingest: %d %+v", code, resp)
	}
	waitFor(t, 60*time.Second, "every record rated once and the duplicate flagged", func() (bool, string) {
		r, err := e.rated(ctx, "acme")
		if err != nil {
			return false, err.Error()
		}
		d := e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = 'acme'")
		return r.Lines == n && r.Amount.Equal(decimal.NewFromInt(n)) && d == 1,
			fmt.Sprintf("%d lines, amount %s, %d duplicates; %s", r.Lines, r.Amount, d, e.lags(ctx))
	})

	// The same broker with a wrong password: migrate fails and says why.
	wrong := filepath.Join(e.dir, "wrong-password")
	if err := os.WriteFile(wrong, []byte("wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shared.bin, "migrate")
	cmd.Env = append(e.environ(), "KAKIN_KAFKA_SASL_PASSWORD_FILE="+wrong) // the last one wins
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "kafka sasl authentication failed") {
		t.Errorf("migrate with a wrong password: %v, output:\n%s\nwant a failure saying the SASL authentication failed", err, out)
	}
}
