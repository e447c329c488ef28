package devstack

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process kfake broker.
type Kafka struct {
	// Addrs are the broker addresses ("127.0.0.1:port"); there is one.
	Addrs []string

	cluster *kfake.Cluster
}

// StartKafka runs an in-process kfake cluster of one broker on
// 127.0.0.1:port (0 = free port). With dir != "" it persists to dir and
// reloads what is there; with dir == "" everything stays in RAM. Without
// sync, writes reach the page cache only (fsync on segment roll and Close),
// so a machine crash may lose recent messages; sync=true fsyncs every
// produced batch. Topics are not auto-created: create them explicitly.
func StartKafka(dir string, port int, sync bool) (*Kafka, error) {
	opts := []kfake.Opt{kfake.Ports(port)}
	if dir != "" {
		abs, err := absDir(dir)
		if err != nil {
			return nil, fmt.Errorf("start kafka: data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(abs))
	}
	if sync {
		opts = append(opts, kfake.SyncWrites())
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
