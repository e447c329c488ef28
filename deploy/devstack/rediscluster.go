package devstack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// RedisCluster is a Redis Cluster of redis-server children on 127.0.0.1:
// masters only, each owning an equal range of the hash slots, each with its
// own AOF like StartRedis. A cluster of one master is a valid cluster.
type RedisCluster struct {
	Nodes []*Redis
}

// StartRedisCluster starts masters redis-server processes in cluster mode,
// in dir/node-0, dir/node-1, …, on free ports, and forms the cluster: it
// assigns the slots, introduces the nodes to each other and waits until
// every node reports the cluster ok. dir must be new: the cluster is formed
// afresh (tests and benchmarks). A node killed and restarted (Redis.Kill,
// Redis.Restart) keeps its port and rejoins from its nodes.conf.
func StartRedisCluster(ctx context.Context, dir string, masters int) (*RedisCluster, error) {
	if masters < 1 {
		return nil, fmt.Errorf("start redis cluster: %d masters", masters)
	}
	c := &RedisCluster{}
	for i := range masters {
		r, err := startRedis(ctx, filepath.Join(dir, "node-"+strconv.Itoa(i)), 0, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
		})
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("start redis cluster: node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, r)
	}
	if err := c.form(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("start redis cluster: %w", err)
	}
	return c, nil
}

// Addrs are the nodes' addresses, the seeds for a cluster client.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Stop stops every node.
func (c *RedisCluster) Stop() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

// form assigns node i the i-th equal range of slots, makes node 0 meet the
// others, and waits for cluster_state:ok on all.
func (c *RedisCluster) form(ctx context.Context) error {
	clients := make([]*redis.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second})
		defer clients[i].Close()
	}
	for i, cl := range clients {
		lo, hi := i*clusterSlots/len(clients), (i+1)*clusterSlots/len(clients)-1
		if err := cl.Do(ctx, "cluster", "addslotsrange", lo, hi).Err(); err != nil {
			return fmt.Errorf("node %d: cluster addslotsrange %d %d: %w", i, lo, hi, err)
		}
	}
	for i, n := range c.Nodes[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(n.port)).Err(); err != nil {
			return fmt.Errorf("node 0 meet node %d: %w", i+1, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ok, err := clusterOK(ctx, clients)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ok after forming: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clusterOK reports whether every node sees the cluster ok with all nodes.
func clusterOK(ctx context.Context, clients []*redis.Client) (bool, error) {
	for i, cl := range clients {
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return false, fmt.Errorf("node %d: cluster info: %w", i, err)
		}
		if !strings.Contains(info, "cluster_state:ok") ||
			!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(clients))+"\r\n") {
			return false, nil
		}
	}
	return true, nil
}
