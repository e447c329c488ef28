package devstack

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

func requireBinaries(t *testing.T) {
	t.Helper()
	for _, b := range []string{"redis-server", "clickhouse-server"} {
		if _, err := findBinary(b); err != nil {
			t.Skipf("%v (run deploy/install-deps.sh)", err)
		}
	}
}

func TestStack(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()

	start := time.Now()
	s, err := StartStack(ctx, dir, Ports{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	t.Logf("stack started in %v: redis %s, clickhouse %s (http %s), kafka %v",
		time.Since(start), s.Redis.Addr, s.ClickHouse.Addr, s.ClickHouse.HTTPAddr, s.Kafka.Addrs)

	// Redis answers and keeps a key across SIGKILL + Restart.
	rdb := redis.NewClient(&redis.Options{Addr: s.Redis.Addr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis ping: %v", err)
	}
	if err := rdb.Set(ctx, "devstack:k", "v1", 0).Err(); err != nil {
		t.Fatalf("redis set: %v", err)
	}

	// ClickHouse answers SELECT 1 as default without a password.
	ch, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{s.ClickHouse.Addr},
		Auth: clickhouse.Auth{Database: "default", Username: "default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var one uint8
	if err := ch.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("clickhouse SELECT 1 = %d, %v", one, err)
	}

	// Kafka: create a topic explicitly, produce and fetch one message.
	const topic = "devstack-test"
	cl := &kafka.Client{Addr: kafka.TCP(s.Kafka.Addrs...), Timeout: 10 * time.Second}
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic: %v", err)
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(s.Kafka.Addrs...),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("hello")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	readOne(ctx, t, s.Kafka.Addrs, topic, "hello")

	t.Logf("checks done at %v", time.Since(start))
	// appendfsync always: the SET was on disk before Redis answered it, so
	// a SIGKILL right now must not lose it.
	if err := s.Redis.Kill(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", s.Redis.Addr); err == nil {
		c.Close()
		t.Fatal("redis still accepts connections after Kill")
	}
	if err := s.Redis.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "devstack:k").Result(); err != nil || got != "v1" {
		t.Fatalf("after kill+restart GET = %q, %v; want v1", got, err)
	}

	t.Logf("redis kill+restart done at %v", time.Since(start))
	// Kafka: a new broker on the same dir still has the message.
	s.Kafka.Close()
	k2, err := StartKafka(filepath.Join(dir, "kafka"), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Kafka = k2
	readOne(ctx, t, k2.Addrs, topic, "hello")

	t.Logf("kafka reopen done at %v", time.Since(start))
	// ClickHouse: a table survives SIGKILL + Restart on the same ports.
	if err := ch.Exec(ctx, "CREATE TABLE default.devstack_restart (x UInt8) ENGINE = TinyLog"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClickHouse.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.ClickHouse.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var tables uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'devstack_restart'").Scan(&tables); err != nil || tables != 1 {
		t.Fatalf("after kill+restart the table count is %d, %v; want 1", tables, err)
	}
	if err := s.ClickHouse.Restart(ctx); err == nil {
		t.Fatal("Restart of a running ClickHouse succeeded")
	}
	t.Logf("clickhouse kill+restart done at %v", time.Since(start))
	// Stop is clean and idempotent.
	for range 2 {
		if err := s.ClickHouse.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("clickhouse stopped at %v", time.Since(start))
		if err := s.Redis.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stopped at %v", time.Since(start))
}

func readOne(ctx context.Context, t *testing.T, addrs []string, topic, want string) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   addrs,
		Topic:     topic,
		Partition: 0,
		MinBytes:  1,
		MaxBytes:  1 << 20,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if string(m.Value) != want {
		t.Fatalf("fetched %q, want %q", m.Value, want)
	}
}

// A server left behind on the same data dir (e.g. by a test binary whose
// Stop never ran) must not break the next start.
func TestLeftoverServersAreReplaced(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()

	ch1, err := StartClickHouse(ctx, filepath.Join(dir, "ch"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch1.Kill() })
	ch2, err := StartClickHouse(ctx, filepath.Join(dir, "ch"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch2.Stop() })
	if !ch1.proc.exited() {
		t.Error("leftover clickhouse still running")
	}

	r1, err := StartRedis(ctx, filepath.Join(dir, "redis"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r1.Kill() })
	r2, err := StartRedis(ctx, filepath.Join(dir, "redis"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r2.Stop() })
	if !r1.proc.exited() {
		t.Error("leftover redis still running")
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir := t.TempDir()
	r, err := StartRedis(ctx, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	// Same port, other dir: the second server cannot bind.
	_, port, _ := net.SplitHostPort(r.Addr)
	p, _ := strconv.Atoi(port)
	_, err = StartRedis(ctx, filepath.Join(dir, "other"), p)
	if err == nil {
		t.Fatal("second redis on a taken port started")
	}
	if !strings.Contains(err.Error(), "redis.log") {
		t.Errorf("error lacks the log tail: %v", err)
	}
	t.Logf("expected error: %v", err)
}

func TestClickHousePortTaken(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir := t.TempDir()
	c, err := StartClickHouse(ctx, filepath.Join(dir, "a"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Kill() })
	_, port, _ := net.SplitHostPort(c.Addr)
	p, _ := strconv.Atoi(port)
	start := time.Now()
	_, err = StartClickHouse(ctx, filepath.Join(dir, "b"), p, 0)
	if err == nil {
		t.Fatal("second clickhouse on a taken port started")
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error lacks the log tail: %v", err)
	}
	t.Logf("failed in %v as expected: %.300s", time.Since(start), err)
}

// The servers die with the process that started them (Pdeathsig).
func TestChildrenDieWithParent(t *testing.T) {
	requireBinaries(t)
	if os.Getenv("DEVSTACK_HELPER_DIR") != "" {
		t.Skip("helper")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "DEVSTACK_HELPER_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "PIDS "); ok {
			for _, f := range strings.Fields(rest) {
				pid, _ := strconv.Atoi(f)
				pids = append(pids, pid)
			}
			break
		}
	}
	if len(pids) != 2 {
		_ = cmd.Process.Kill()
		t.Fatalf("helper did not report pids (scan err %v)", sc.Err())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("child %d outlived its parent", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("DEVSTACK_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestChildrenDieWithParent")
	}
	ctx := context.Background()
	r, err := StartRedis(ctx, filepath.Join(dir, "redis"), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartClickHouse(ctx, filepath.Join(dir, "clickhouse"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PIDS %d %d\n", r.proc.cmd.Process.Pid, c.proc.cmd.Process.Pid)
	select {}
}

func TestEnsureInstalledNoop(t *testing.T) {
	requireBinaries(t)
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if err := EnsureInstalled(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "already installed") {
		t.Errorf("log = %q", buf.String())
	}
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d from FreePort not bindable: %v", p, err)
	}
	ln.Close()
}
