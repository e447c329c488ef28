package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the devstack's Sentinels monitor.
const SentinelMaster = "kakin"

// RedisSentinel is a Redis primary with replicas and Sentinels watching
// them, all redis-server child processes on 127.0.0.1: Nodes[0] starts as
// the primary; every node persists like StartRedis (AOF, appendfsync
// always). The Sentinels agree on a failure with a quorum of a majority and
// mark a primary down after 1 s without answers.
type RedisSentinel struct {
	Nodes     []*Redis
	Sentinels []*Sentinel
}

// Sentinel is one redis-server process in sentinel mode.
type Sentinel struct {
	Addr string
	dir  string
	mu   sync.Mutex
	proc *proc
}

// StartRedisSentinel starts a primary, replicas replicas of it and
// sentinels Sentinels under dir on free ports, and waits until every
// replica is in sync and every Sentinel knows the primary, its replicas and
// the other Sentinels.
func StartRedisSentinel(ctx context.Context, dir string, replicas, sentinels int) (*RedisSentinel, error) {
	s := &RedisSentinel{}
	primary, err := StartRedis(ctx, filepath.Join(dir, "node-0"), 0)
	if err != nil {
		return nil, fmt.Errorf("start redis sentinel: %w", err)
	}
	s.Nodes = append(s.Nodes, primary)
	for i := 1; i <= replicas; i++ {
		r, err := startRedis(ctx, filepath.Join(dir, "node-"+strconv.Itoa(i)), 0,
			[]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)})
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("start redis sentinel: replica %d: %w", i, err)
		}
		s.Nodes = append(s.Nodes, r)
	}
	bin, err := findBinary("redis-server")
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("start redis sentinel: %w", err)
	}
	quorum := sentinels/2 + 1
	for i := range sentinels {
		sd, err := absDir(filepath.Join(dir, "sentinel-"+strconv.Itoa(i)))
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("start redis sentinel: %w", err)
		}
		port, err := freePort()
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("start redis sentinel: %w", err)
		}
		// Sentinel rewrites its config file as it learns: one per process.
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
			port, sd, SentinelMaster, primary.port, quorum, SentinelMaster, SentinelMaster, SentinelMaster)
		cf := filepath.Join(sd, "sentinel.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			s.Stop()
			return nil, fmt.Errorf("start redis sentinel: %w", err)
		}
		p, err := startProc(bin, []string{cf, "--sentinel"}, sd, filepath.Join(sd, "sentinel.log"))
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("start redis sentinel: %w", err)
		}
		s.Sentinels = append(s.Sentinels, &Sentinel{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: sd, proc: p})
	}
	if err := s.waitFormed(ctx, replicas); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start redis sentinel: %w", err)
	}
	return s, nil
}

// SentinelAddrs are the Sentinels' addresses, for a failover client.
func (s *RedisSentinel) SentinelAddrs() []string {
	var out []string
	for _, x := range s.Sentinels {
		out = append(out, x.Addr)
	}
	return out
}

// Primary asks the first Sentinel that answers for the current primary's
// address.
func (s *RedisSentinel) Primary(ctx context.Context) (string, error) {
	var last error
	for _, x := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: x.Addr, DialTimeout: time.Second})
		addr, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names a primary: %w", last)
}

// Node returns the node at addr, or nil.
func (s *RedisSentinel) Node(addr string) *Redis {
	for _, n := range s.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// waitFormed waits until the replicas are in sync and each Sentinel sees
// the replicas and the other Sentinels.
func (s *RedisSentinel) waitFormed(ctx context.Context, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	check := func() (bool, error) {
		for _, x := range s.Sentinels {
			if x.proc.exited() {
				return false, fmt.Errorf("sentinel %s exited: %w\n%s", x.Addr, x.proc.exitError(), tailFile(filepath.Join(x.dir, "sentinel.log"), 2048))
			}
			c := redis.NewSentinelClient(&redis.Options{Addr: x.Addr, DialTimeout: time.Second})
			reps, err1 := c.Replicas(ctx, SentinelMaster).Result()
			sens, err2 := c.Sentinels(ctx, SentinelMaster).Result()
			c.Close()
			if err1 != nil || err2 != nil || len(reps) < replicas || len(sens) < len(s.Sentinels)-1 {
				return false, nil
			}
		}
		c := redis.NewClient(&redis.Options{Addr: s.Nodes[0].Addr})
		defer c.Close()
		n, err := c.Do(ctx, "WAIT", replicas, 1000).Int()
		return err == nil && n >= replicas, nil
	}
	for {
		ok, err := check()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sentinels did not form: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the Sentinels, then every node.
func (s *RedisSentinel) Stop() error {
	var errs []error
	for _, x := range s.Sentinels {
		x.mu.Lock()
		errs = append(errs, x.proc.stop(stopTimeout))
		x.mu.Unlock()
	}
	for _, n := range s.Nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}
