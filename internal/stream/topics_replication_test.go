package stream

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Topics are created with the replication factor and min.insync.replicas
// asked for (kfake with three brokers).
func TestCreateTopicsReplication(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := c.ListenAddrs()
	err = CreateTopics(ctx, brokers, []TopicSpec{{Name: "repl", Partitions: 2, RetentionMS: -1, ReplicationFactor: 3, MinInsyncReplicas: 2}})
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"repl"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 2 {
		t.Fatalf("metadata = %+v", md.Topics)
	}
	for _, p := range md.Topics[0].Partitions {
		if len(p.Replicas) != 3 {
			t.Errorf("partition %d has %d replicas, want 3", p.ID, len(p.Replicas))
		}
	}
	dc, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: "repl", ConfigNames: []string{"min.insync.replicas"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, r := range dc.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "min.insync.replicas" {
				got = e.ConfigValue
			}
		}
	}
	if got != "2" {
		t.Errorf("min.insync.replicas = %q, want 2", got)
	}
}
