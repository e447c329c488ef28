package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/kakin-dev/kakin/internal/testenv"
)

// TestChaos runs the pipeline as separate processes under a seeded nemesis
// and checks the totals exactly (see the package doc). Short by default (in
// `make test`); KAKIN_CHAOS=long (`make chaos`) runs two processes of every
// role and at least 20 faults of every kind. KAKIN_CHAOS_SEED=N repeats a
// run's workload and fault schedule; KAKIN_CHAOS_FAULTS=N sets the faults per
// kind; KAKIN_CHAOS_KEEP=1 keeps the data and logs directory.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: starts Redis, ClickHouse and a dozen processes")
	}
	long := os.Getenv("KAKIN_CHAOS") == "long"
	seed := uint64(time.Now().UnixNano() % 1_000_000)
	if v := os.Getenv("KAKIN_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("KAKIN_CHAOS_SEED=%q: %v", v, err)
		}
		seed = n
	}
	o := Options{
		Seed: seed,
		// Short: one process of each role but two of ingest and dedupe,
		// one fault of every kind (8), pauses up to 2 s.
		Roles:     map[string]int{"admin": 1, "ingest": 2, "dedupe": 2, "rater": 1, "aggregator": 1},
		PerKind:   1,
		MaxPause:  2 * time.Second,
		BodyEvery: 400 * time.Millisecond,
		Workers:   1,
		Drain:     3 * time.Minute,
	}
	if long {
		o.Roles = map[string]int{"admin": 1, "ingest": 2, "dedupe": 2, "rater": 2, "aggregator": 2}
		o.PerKind, o.MaxPause, o.Workers, o.BodyEvery = 20, 4*time.Second, 2, 300*time.Millisecond
	}
	if v := os.Getenv("KAKIN_CHAOS_FAULTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("KAKIN_CHAOS_FAULTS=%q: want a count", v)
		}
		o.PerKind = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Hour)
	defer cancel()
	if err := devstack.EnsureInstalled(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kakin-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = dir
	o.Bin = filepath.Join(dir, "kakin")
	build := exec.CommandContext(ctx, "go", "build", "-o", o.Bin, "../cmd/kakin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kakin: %v\n%s", err, out)
	}
	level := slog.LevelInfo
	if !testing.Verbose() {
		level = slog.LevelWarn
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	rep := Run(ctx, o)
	fmt.Println(rep.String()) // the summary, also on success
	if !rep.OK() {
		t.Errorf("chaos run failed; reproduce with KAKIN_CHAOS_SEED=%d (logs of every process in %s)", seed, filepath.Join(dir, "logs"))
		return
	}
	if os.Getenv("KAKIN_CHAOS_KEEP") == "" {
		os.RemoveAll(dir)
	}
}

// TestMain wants no shared servers: a chaos run starts (and kills) its own.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{}) }
