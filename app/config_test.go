package app

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Validate checks the sections of the roles a process runs: a setting only
// another role reads does not stop it.
func TestConfigValidate(t *testing.T) {
	defaults := func() Config {
		var c Config
		c.RegisterFlags(flag.NewFlagSet("t", flag.ContinueOnError))
		return c
	}
	tests := []struct {
		name    string
		change  func(c *Config)
		wantErr string // "" for none
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "unknown role", change: func(c *Config) { c.Roles = "ingest,billing" }, wantErr: `unknown role "billing"`},
		{name: "no brokers", change: func(c *Config) { c.Kafka.Brokers = " , " }, wantErr: "no kafka brokers"},
		{name: "rater without a re-rate wait", change: func(c *Config) { c.Rater.RerateWait = 0 }, wantErr: "--rerate-wait must be positive"},
		{name: "re-rate wait without the rater", change: func(c *Config) { c.Roles = "ingest,admin"; c.Rater.RerateWait = 0 }},
		{name: "certificate without a key", change: func(c *Config) { c.HTTP.TLSCert = "cert.pem" }, wantErr: "--tls-cert and --tls-key"},
		{name: "admin without a master key file", change: func(c *Config) { c.Admin.MasterKeyFile = "" }, wantErr: "--master-key-file"},
		{name: "kafka scram", change: func(c *Config) {
			c.Kafka.SASLMechanism, c.Kafka.SASLUsername, c.Kafka.SASLPassword = "scram-sha-512", "kakin", "p"
		}},
		{name: "kafka password from a file", change: func(c *Config) {
			c.Kafka.SASLMechanism, c.Kafka.SASLUsername, c.Kafka.SASLPasswordFile = "PLAIN", "kakin", "/run/secrets/kafka"
		}},
		{name: "kafka scram without a password", change: func(c *Config) {
			c.Kafka.SASLMechanism, c.Kafka.SASLUsername = "SCRAM-SHA-256", "kakin"
		}, wantErr: "--kafka-sasl-mechanism SCRAM-SHA-256 needs a password: KAKIN_KAFKA_SASL_PASSWORD (--kafka-sasl-password) or --kafka-sasl-password-file"},
		{name: "kafka sasl without a user", change: func(c *Config) {
			c.Kafka.SASLMechanism, c.Kafka.SASLPassword = "PLAIN", "p"
		}, wantErr: "--kafka-sasl-mechanism PLAIN needs --kafka-sasl-username"},
		{name: "kafka password twice", change: func(c *Config) {
			c.Kafka.SASLMechanism, c.Kafka.SASLUsername, c.Kafka.SASLPassword, c.Kafka.SASLPasswordFile = "PLAIN", "kakin", "p", "f"
		}, wantErr: "--kafka-sasl-password and --kafka-sasl-password-file: give one"},
		{name: "kafka unknown mechanism", change: func(c *Config) {
			c.Kafka.SASLMechanism, c.Kafka.SASLUsername, c.Kafka.SASLPassword = "GSSAPI", "kakin", "p"
		}, wantErr: `--kafka-sasl-mechanism "GSSAPI": want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{name: "kafka user without a mechanism", change: func(c *Config) { c.Kafka.SASLUsername = "kakin" }, wantErr: "without --kafka-sasl-mechanism"},
		{name: "kafka client certificate without its key", change: func(c *Config) { c.Kafka.TLSCert = "c.pem" }, wantErr: "--kafka-tls-cert and --kafka-tls-key"},
		{name: "kafka skip verify with a ca", change: func(c *Config) {
			c.Kafka.TLSCA, c.Kafka.TLSInsecureSkipVerify = "ca.pem", true
		}, wantErr: "--kafka-tls-insecure-skip-verify with --kafka-tls-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.change(&c)
			err := c.Validate()
			ok := err == nil
			if tt.wantErr != "" {
				ok = err != nil && strings.Contains(err.Error(), tt.wantErr)
			}
			if !ok {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// Conn reads the files the Kafka section names and says which flag a bad
// one came from.
func TestKafkaConn(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     KafkaConfig
		wantErr string // "" for none
		wantTLS bool
	}{
		{name: "plaintext", cfg: KafkaConfig{Brokers: "k:9092"}},
		{name: "tls with the system roots", cfg: KafkaConfig{Brokers: "k:9092", TLS: true}, wantTLS: true},
		{name: "scram password file", cfg: KafkaConfig{Brokers: "k:9092", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "u", SASLPasswordFile: pw}},
		{name: "missing password file", cfg: KafkaConfig{Brokers: "k:9092", SASLMechanism: "PLAIN", SASLUsername: "u", SASLPasswordFile: filepath.Join(dir, "nope")}, wantErr: "--kafka-sasl-password-file"},
		{name: "empty password file", cfg: KafkaConfig{Brokers: "k:9092", SASLMechanism: "PLAIN", SASLUsername: "u", SASLPasswordFile: empty}, wantErr: "is empty"},
		{name: "ca that is not PEM", cfg: KafkaConfig{Brokers: "k:9092", TLSCA: notPEM}, wantErr: "--kafka-tls-*: kafka tls ca: no PEM certificate"},
		{name: "invalid section", cfg: KafkaConfig{Brokers: "k:9092", SASLMechanism: "PLAIN"}, wantErr: "--kafka-sasl-username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tt.cfg.Conn()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Conn() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if conn.Dialer == nil || conn.Transport == nil || strings.Join(conn.Brokers, ",") != "k:9092" {
				t.Fatalf("Conn() = %+v", conn)
			}
			if (conn.Dialer.TLS != nil) != tt.wantTLS || conn.Transport.TLS != conn.Dialer.TLS {
				t.Errorf("TLS: dialer %v, transport %v; want TLS %v on both", conn.Dialer.TLS, conn.Transport.TLS, tt.wantTLS)
			}
			if (conn.Dialer.SASLMechanism != nil) != (tt.cfg.SASLMechanism != "") || conn.Transport.SASL != conn.Dialer.SASLMechanism {
				t.Errorf("SASL: dialer %v, transport %v", conn.Dialer.SASLMechanism, conn.Transport.SASL)
			}
		})
	}
}
