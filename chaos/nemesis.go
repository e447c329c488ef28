package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Fault kinds: what the nemesis does to which kind of process.
const (
	KillRole       = "kill role"       // SIGKILL a kakin serve process
	StopRole       = "stop role"       // SIGTERM a kakin serve process
	KillBroker     = "kill broker"     // SIGKILL the broker process
	StopBroker     = "stop broker"     // SIGTERM the broker process
	KillRedis      = "kill redis"      // SIGKILL redis-server
	StopRedis      = "stop redis"      // SIGTERM redis-server
	KillClickHouse = "kill clickhouse" // SIGKILL clickhouse-server
	StopClickHouse = "stop clickhouse" // SIGTERM clickhouse-server
)

// FaultKinds are every kind, in summary order.
var FaultKinds = []string{KillRole, StopRole, KillBroker, StopBroker, KillRedis, StopRedis, KillClickHouse, StopClickHouse}

// Fault is one planned fault.
type Fault struct {
	Kind     string
	Target   int           // index into the role slots, for role faults
	Pause    time.Duration // before it, once the cluster is healthy
	Downtime time.Duration // how long the process stays down
	// Overlap: strike without waiting for the cluster to be healthy again,
	// so that this fault lands while the last one is still being recovered
	// from. Only for targets that are not consumer-group members (see Run).
	Overlap bool
}

// Plan is the nemesis's schedule: perKind faults of every kind in a random
// order, with random pauses and downtimes, all from seed.
func Plan(seed uint64, perKind, roleSlots int, maxPause time.Duration) []Fault {
	rng := rand.New(rand.NewPCG(seed, seed^0x6e656d65736973))
	var out []Fault
	for _, k := range FaultKinds {
		for range perKind {
			out = append(out, Fault{Kind: k})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for i := range out {
		out[i].Target = rng.IntN(roleSlots)
		out[i].Pause = time.Duration(rng.Int64N(int64(maxPause)))
		out[i].Downtime = time.Duration(rng.Int64N(int64(3 * time.Second)))
		out[i].Overlap = rng.IntN(4) == 0
	}
	return out
}

// Nemesis carries out a plan against a cluster.
type Nemesis struct {
	c   *Cluster
	log *slog.Logger

	mu       sync.Mutex
	done     map[string]int // faults carried out, by kind
	skipped  map[string]int // faults not carried out (the target was down), by kind
	notReady int            // times the cluster was not healthy within the bound before a fault
	overlaps int            // faults made without waiting for the cluster to recover
}

// hitsMember reports whether f may kill a consumer-group member: a consumer
// role, or the broker (every member rejoins after it).
func (n *Nemesis) hitsMember(f Fault) bool {
	switch f.Kind {
	case KillRole, StopRole:
		switch n.c.Roles[f.Target].Role {
		case "ingest", "admin":
			return false
		}
		return true
	case KillBroker, StopBroker:
		return true
	}
	return false
}

// NewNemesis returns a nemesis for c.
func NewNemesis(c *Cluster, log *slog.Logger) *Nemesis {
	return &Nemesis{c: c, log: log, done: map[string]int{}, skipped: map[string]int{}}
}

// Run carries out plan. Before each fault it waits (bounded) until the
// cluster is healthy — every process ready, every consumer group stable
// with all its members — because the embedded broker never expires a group
// member killed between its join and its sync (see docs/ARCHITECTURE.md,
// "The embedded broker"); then it pauses, then strikes. A quarter of the
// faults whose target is no group member (Redis, ClickHouse, ingest, admin)
// skip the wait and land while the cluster still recovers from the last.
func (n *Nemesis) Run(ctx context.Context, plan []Fault) error {
	for i, f := range plan {
		if f.Overlap && !n.hitsMember(f) {
			n.mu.Lock()
			n.overlaps++
			n.mu.Unlock()
		} else if err := n.c.WaitHealthy(ctx, 90*time.Second); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n.mu.Lock()
			n.notReady++
			n.mu.Unlock()
			n.log.Warn("chaos: nemesis goes on with an unhealthy cluster", "fault", i+1, "err", err)
		}
		if err := sleep(ctx, f.Pause); err != nil {
			return err
		}
		did, target, err := n.strike(ctx, f)
		if err != nil {
			return fmt.Errorf("fault %d (%s): %w", i+1, f.Kind, err)
		}
		n.mu.Lock()
		if did {
			n.done[f.Kind]++
		} else {
			n.skipped[f.Kind]++
		}
		n.mu.Unlock()
		n.log.Info("chaos: fault", "n", i+1, "of", len(plan), "kind", f.Kind, "target", target, "done", did, "downtime", f.Downtime.Round(time.Millisecond))
	}
	return n.c.WaitHealthy(ctx, 2*time.Minute)
}

func (n *Nemesis) strike(ctx context.Context, f Fault) (bool, string, error) {
	c := n.c
	switch f.Kind {
	case KillRole, StopRole:
		s := c.Roles[f.Target]
		sig := syscall.SIGKILL
		if f.Kind == StopRole {
			sig = syscall.SIGTERM
		}
		did, err := s.Signal(ctx, sig, f.Downtime)
		return did, s.Name, err
	case KillBroker, StopBroker:
		sig := syscall.SIGKILL
		if f.Kind == StopBroker {
			sig = syscall.SIGTERM
		}
		did, err := c.Broker.Signal(ctx, sig, f.Downtime)
		return did, "broker", err
	case KillRedis, StopRedis:
		var err error
		if f.Kind == KillRedis {
			err = c.Redis.Kill()
		} else {
			err = c.Redis.Stop()
		}
		if err != nil {
			return false, "redis", err
		}
		if err := sleep(ctx, f.Downtime); err != nil {
			return true, "redis", err
		}
		return true, "redis", restart(ctx, c.Redis.Restart)
	case KillClickHouse, StopClickHouse:
		var err error
		if f.Kind == KillClickHouse {
			err = c.CH.Kill()
		} else {
			err = c.CH.Stop()
		}
		if err != nil {
			return false, "clickhouse", err
		}
		if err := sleep(ctx, f.Downtime); err != nil {
			return true, "clickhouse", err
		}
		return true, "clickhouse", restart(ctx, c.CH.Restart)
	}
	return false, "", fmt.Errorf("unknown fault kind %q", f.Kind)
}

// restart starts a server again like a supervisor would: up to three
// attempts (each bounded by the devstack's own readiness timeout).
func restart(ctx context.Context, start func(context.Context) error) error {
	var err error
	for range 3 {
		if err = start(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	return err
}

// Counts returns the faults carried out and skipped by kind, how often the
// cluster was not healthy in time before a fault, and how many faults were
// made without waiting for it.
func (n *Nemesis) Counts() (done, skipped map[string]int, notReady, overlaps int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	done, skipped = map[string]int{}, map[string]int{}
	for k, v := range n.done {
		done[k] = v
	}
	for k, v := range n.skipped {
		skipped[k] = v
	}
	return done, skipped, n.notReady, n.overlaps
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
