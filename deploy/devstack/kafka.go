package devstack

import (
	"crypto/tls"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process kfake broker.
type Kafka struct {
	// Addrs are the broker addresses ("127.0.0.1:port"); there is one.
	Addrs []string

	cluster *kfake.Cluster
}

// KafkaOptions configure StartKafkaWith.
type KafkaOptions struct {
	// Dir, when set, is the directory the broker persists to and reloads
	// from; empty: everything stays in RAM.
	Dir string
	// Port is the listen port on 127.0.0.1 (0: a free one).
	Port int
	// Sync fsyncs every produced batch.
	Sync bool
	// TLS, when set, makes the listener TLS only (KafkaTLS makes one).
	TLS *tls.Config
	// Users, when set, turn SASL on: every client must authenticate as one
	// of them (each a superuser: no ACLs).
	Users []KafkaUser
}

// KafkaUser is a SASL user of the embedded broker.
type KafkaUser struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Name      string
	Password  string
}

// StartKafka runs an in-process kfake cluster of one broker on
// 127.0.0.1:port (0 = free port). With dir != "" it persists to dir and
// reloads what is there; with dir == "" everything stays in RAM. Without
// sync, writes reach the page cache only (fsync on segment roll and Close),
// so a machine crash may lose recent messages; sync=true fsyncs every
// produced batch. Topics are not auto-created: create them explicitly.
func StartKafka(dir string, port int, sync bool) (*Kafka, error) {
	return StartKafkaWith(KafkaOptions{Dir: dir, Port: port, Sync: sync})
}

// StartKafkaWith is StartKafka with the listener's TLS and SASL users.
func StartKafkaWith(o KafkaOptions) (*Kafka, error) {
	opts := []kfake.Opt{kfake.Ports(o.Port)}
	if o.Dir != "" {
		abs, err := absDir(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("start kafka: data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(abs))
	}
	if o.Sync {
		opts = append(opts, kfake.SyncWrites())
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS))
	}
	if len(o.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range o.Users {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.Name, u.Password))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	return &Kafka{Addrs: c.ListenAddrs(), cluster: c}, nil
}

// Close shuts the broker down, persisting its state when it has a data dir.
// It is safe to call more than once.
func (k *Kafka) Close() {
	if k != nil && k.cluster != nil {
		k.cluster.Close()
	}
}
