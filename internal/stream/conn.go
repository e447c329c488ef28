package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Conn is how every Kafka client of a process reaches the brokers: the
// bootstrap addresses, and one Dialer (consumer groups, Ping) and one
// Transport (writers, kafka.Client: topic creation, lag, group positions)
// that carry the process's TLS and SASL settings. Build it once (NewConn)
// and hand it to every client; a Conn with a nil Dialer and Transport
// (Plain) talks plaintext without SASL, as to the embedded broker.
type Conn struct {
	Brokers   []string
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
}

// Plain is a Conn to brokers in plaintext without SASL.
func Plain(brokers []string) Conn { return Conn{Brokers: brokers} }

// dialTimeout bounds a connection's set-up: TCP, the TLS handshake and the
// SASL exchange together.
const dialTimeout = 10 * time.Second

// NewConn returns the Conn of brokers with tlsCfg (nil: plaintext) and mech
// (nil: no SASL): its Dialer and Transport are the only ones the process's
// clients use.
func NewConn(brokers []string, tlsCfg *tls.Config, mech sasl.Mechanism) Conn {
	return Conn{
		Brokers: brokers,
		Dialer: &kafka.Dialer{Timeout: dialTimeout, DualStack: true, TLS: tlsCfg, SASLMechanism: mech,
			ClientID: "kakin"},
		Transport: &kafka.Transport{DialTimeout: dialTimeout, TLS: tlsCfg, SASL: mech, ClientID: "kakin",
			Dial: (&net.Dialer{Timeout: dialTimeout}).DialContext},
	}
}

// dialer is c.Dialer, or kafka-go's defaults when c has none.
func (c Conn) dialer() *kafka.Dialer {
	if c.Dialer != nil {
		return c.Dialer
	}
	return &kafka.Dialer{Timeout: dialTimeout, DualStack: true}
}

// transport is c.Transport as a RoundTripper; nil (kafka-go's default
// transport) when c has none.
func (c Conn) transport() kafka.RoundTripper {
	if c.Transport == nil {
		return nil
	}
	return c.Transport
}

// Client returns a kafka.Client of c's brokers over c's Transport, each
// request bounded by timeout.
func (c Conn) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: c.transport()}
}

// TLSConfig returns the TLS client configuration of a Kafka connection: the
// system roots, or only the PEM certificates of caFile when it is set; a
// client certificate from certFile and keyFile when they are set (mutual
// TLS); and, with insecureSkipVerify, no check of the broker's certificate
// at all (for tests only: anyone between can read and change the stream).
func TLSConfig(caFile, certFile, keyFile string, insecureSkipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca: no PEM certificate in %s", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// SASL mechanisms NewSASL knows.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLMechanisms are the mechanisms NewSASL knows.
var SASLMechanisms = []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}

// NewSASL returns the SASL mechanism named (case-insensitive) with its
// credentials; "" is no SASL (nil).
func NewSASL(mechanism, username, password string) (sasl.Mechanism, error) {
	switch strings.ToUpper(mechanism) {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: username, Password: password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, username, password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, username, password)
	}
	return nil, fmt.Errorf("unknown kafka sasl mechanism %q (want one of %s)", mechanism, strings.Join(SASLMechanisms, ", "))
}

// errAuth is the message a failed SASL authentication is reported with.
var errAuth = errors.New("kafka sasl authentication failed (check the mechanism, user name and password)")

// describeAuth wraps err with errAuth when it is the broker refusing the
// SASL exchange, so that a wrong password reads as one, not as a generic
// connection error.
func describeAuth(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kafka.SASLAuthenticationFailed) || errors.Is(err, kafka.UnsupportedSASLMechanism) ||
		errors.Is(err, kafka.IllegalSASLState) {
		return fmt.Errorf("%w: %w", errAuth, err)
	}
	return err
}
