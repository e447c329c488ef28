package devstack

import (
	"context"
	"time"

	"errors"
	"fmt"
	"github.com/ClickHouse/clickhouse-go/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ClickHouseCluster is a replicated, sharded ClickHouse cluster of
// clickhouse-server child processes on 127.0.0.1 with one ZooKeeper: Shards[s][r]
// is replica r of shard s. Every server's config names the cluster (Name) in
// remote_servers with internal_replication (the Distributed engine writes
// one replica of a shard; ReplicatedMergeTree copies it to the others), the
// ZooKeeper, and its macros: {shard} ("01", "02", …) and {replica}
// ("s01r1", …, unique in the cluster).
type ClickHouseCluster struct {
	Name      string
	ZooKeeper *ZooKeeper
	Shards    [][]*ClickHouse
}

// StartClickHouseCluster starts ZooKeeper and shards × replicas
// clickhouse-servers under dir (zookeeper/, s01r1/, …) on free ports and
// waits until every server answers. It returns an error wrapping
// ErrNoZooKeeper when ZooKeeper is not installed.
func StartClickHouseCluster(ctx context.Context, dir, name string, shards, replicas int) (*ClickHouseCluster, error) {
	if shards < 1 || replicas < 1 {
		return nil, fmt.Errorf("start clickhouse cluster: %d shards × %d replicas", shards, replicas)
	}
	bin, err := findBinary("clickhouse-server")
	if err != nil {
		return nil, fmt.Errorf("start clickhouse cluster: %w", err)
	}
	base, err := os.ReadFile(clickHouseConfig)
	if err != nil {
		return nil, fmt.Errorf("start clickhouse cluster: %w", err)
	}
	if dir, err = absDir(dir); err != nil {
		return nil, fmt.Errorf("start clickhouse cluster: %w", err)
	}
	zk, err := StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"))
	if err != nil {
		return nil, fmt.Errorf("start clickhouse cluster: %w", err)
	}
	c := &ClickHouseCluster{Name: name, ZooKeeper: zk}
	// Every server's ports first: each config lists all of them.
	ports := make([][][]int, shards) // [shard][replica]{tcp, http, interserver}
	taken := map[int]bool{}
	for s := range ports {
		ports[s] = make([][]int, replicas)
		for r := range ports[s] {
			for range 3 {
				p, err := freePort()
				for err == nil && taken[p] {
					p, err = freePort()
				}
				if err != nil {
					c.Stop()
					return nil, fmt.Errorf("start clickhouse cluster: %w", err)
				}
				taken[p] = true
				ports[s][r] = append(ports[s][r], p)
			}
		}
	}
	var remote strings.Builder
	for s := range ports {
		remote.WriteString("      <shard>\n        <internal_replication>true</internal_replication>\n")
		for r := range ports[s] {
			fmt.Fprintf(&remote, "        <replica><host>127.0.0.1</host><port>%d</port></replica>\n", ports[s][r][0])
		}
		remote.WriteString("      </shard>\n")
	}
	for s := range shards {
		var row []*ClickHouse
		for r := range replicas {
			shard := fmt.Sprintf("%02d", s+1)
			replica := "s" + shard + "r" + strconv.Itoa(r+1)
			sdir := filepath.Join(dir, replica)
			conf := filepath.Join(sdir, "conf")
			if err := os.MkdirAll(filepath.Join(conf, "config.d"), 0o755); err != nil {
				c.Stop()
				return nil, fmt.Errorf("start clickhouse cluster: %w", err)
			}
			if err := os.WriteFile(filepath.Join(conf, "config.xml"), base, 0o644); err != nil {
				c.Stop()
				return nil, fmt.Errorf("start clickhouse cluster: %w", err)
			}
			override := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <remote_servers replace="replace">
    <%s>
%s    </%s>
  </remote_servers>
  <zookeeper replace="replace">
    <node><host>127.0.0.1</host><port>%d</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <macros replace="replace">
    <shard>%s</shard>
    <replica>%s</replica>
  </macros>
  <interserver_http_host>127.0.0.1</interserver_http_host>
</yandex>
`, name, remote.String(), name, zk.Port, shard, replica)
			if err := os.WriteFile(filepath.Join(conf, "config.d", "cluster.xml"), []byte(override), 0o644); err != nil {
				c.Stop()
				return nil, fmt.Errorf("start clickhouse cluster: %w", err)
			}
			ch, err := startClusterServer(ctx, bin, sdir, ports[s][r], filepath.Join(conf, "config.xml"))
			if err != nil {
				c.Stop()
				return nil, fmt.Errorf("start clickhouse cluster: %s: %w", replica, err)
			}
			row = append(row, ch)
		}
		c.Shards = append(c.Shards, row)
	}
	for _, s := range c.Servers() {
		if err := s.waitZooKeeper(ctx); err != nil {
			c.Stop()
			return nil, fmt.Errorf("start clickhouse cluster: %w", err)
		}
	}
	return c, nil
}

// waitZooKeeper waits until the server reads ZooKeeper (system.zookeeper).
// clickhouse-server 18.16 can crash (SIGSEGV in its DDL worker) when its
// first ZooKeeper session fails on a loaded machine: a server that exited
// is started again, up to three times.
func (c *ClickHouse) waitZooKeeper(ctx context.Context) error {
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		c.mu.Lock()
		if c.proc.exited() {
			if err := c.start(ctx, clickHouseRestartTimeout); err != nil {
				c.mu.Unlock()
				return err
			}
		}
		c.mu.Unlock()
		if last = c.readZooKeeper(ctx); last == nil {
			return nil
		}
	}
	return fmt.Errorf("%s cannot read zookeeper: %w\n%s", c.Addr, last, c.logTail())
}

// readZooKeeper lists the ZooKeeper root through the server, retrying for
// up to 30 s while the server is up.
func (c *ClickHouse) readZooKeeper(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{c.Addr}, Auth: clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout: time.Second, ReadTimeout: 10 * time.Second, MaxOpenConns: 1,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-c.proc.done:
			return fmt.Errorf("clickhouse-server exited: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startClusterServer starts one server of a cluster in dir on fixed ports.
func startClusterServer(ctx context.Context, bin, dir string, ports []int, config string) (*ClickHouse, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(clickHouseUsersXML), 0o644); err != nil {
		return nil, err
	}
	return startClickHouseOn(ctx, bin, dir, append([]int(nil), ports...), config,
		[]string{"--interserver_http_host=127.0.0.1"})
}

// Servers lists every server, shard by shard.
func (c *ClickHouseCluster) Servers() []*ClickHouse {
	var out []*ClickHouse
	for _, row := range c.Shards {
		out = append(out, row...)
	}
	return out
}

// Stop stops every server, then ZooKeeper.
func (c *ClickHouseCluster) Stop() error {
	var errs []error
	for _, s := range c.Servers() {
		errs = append(errs, s.Stop())
	}
	if c.ZooKeeper != nil {
		errs = append(errs, c.ZooKeeper.Stop())
	}
	return errors.Join(errs...)
}

// LogTails returns the tail of every server's error log, for a failed test.
func (c *ClickHouseCluster) LogTails() string {
	var b strings.Builder
	for _, s := range c.Servers() {
		b.WriteString(s.Addr + ":\n" + s.logTail() + "\n")
	}
	return b.String()
}
